"""Voices, models and health as the service lists them; requests reach the voice they name."""

import httpx
import openai

from aistack_testing.processes import Service

SECOND_VOICE = "en_GB-second-medium"
BUNDLED_VOICE = "en_US-joe-medium"


def test_health(piper: Service) -> None:
    assert httpx.get(piper.url + "/health").json()["status"] == "ok"


def test_models(client: openai.OpenAI) -> None:
    cards = {model.id: model for model in client.models.list()}
    assert set(cards) == {"piper", "tts-1", "tts-1-hd"}
    assert all(card.model_extra["capabilities"] == ["tts"] for card in cards.values())
    assert cards["piper"].owned_by == "rhasspy"


def test_voice_list(piper: Service) -> None:
    listing = httpx.get(piper.url + "/v1/audio/voices").json()
    voices = {voice["id"]: voice for voice in listing["data"]}
    assert listing["voices"] == list(voices) == [BUNDLED_VOICE, SECOND_VOICE]
    bundled, second = voices[BUNDLED_VOICE], voices[SECOND_VOICE]
    assert (bundled["name"], bundled["language"], bundled["default"]) == ("joe", "en_US", True)
    assert (second["name"], second["language"], second["default"]) == ("second", "en_GB", False)
    assert second["aliases"] == ["nova"]
    assert "alloy" in bundled["aliases"] and "nova" not in bundled["aliases"]


def seconds_of(client: openai.OpenAI, voice: str) -> float:
    """How long the voice takes to say a sentence (a 44-byte header, 16-bit mono)."""
    audio = client.audio.speech.create(
        model="piper",
        voice=voice,
        input="The quick brown fox jumps over the lazy dog.",
        response_format="wav",
    ).content
    return (len(audio) - 44) / 2 / 22050


def test_every_voice_name_reaches_its_voice(
    client: openai.OpenAI, second_voice_slower: float
) -> None:
    """The second voice's phonemes last `second_voice_slower` times as long as the bundled
    voice's (at 2, this sentence takes about 1.7 times as long): a name
    routed to the wrong voice is heard in the length of its audio. Piper's durations vary
    by a few percent from one synthesis to the next, hence the margins."""
    bundled = seconds_of(client, BUNDLED_VOICE)
    assert bundled > 1.0
    halfway = (1 + second_voice_slower) / 2
    for voice in ("alloy", "verse"):
        assert 0.8 < seconds_of(client, voice) / bundled < 1.25, voice
    for voice in ("nova", SECOND_VOICE):
        ratio = seconds_of(client, voice) / bundled
        assert halfway < ratio < second_voice_slower * 1.25, (voice, ratio)

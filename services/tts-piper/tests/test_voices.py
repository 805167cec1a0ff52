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


def test_every_voice_name_speaks(client: openai.OpenAI) -> None:
    for voice in ("alloy", "verse", "nova", BUNDLED_VOICE, SECOND_VOICE):
        audio = client.audio.speech.create(
            model="piper", voice=voice, input="Hi.", response_format="wav"
        ).content
        assert len(audio) > 44 + 22050 * 2 // 10, voice

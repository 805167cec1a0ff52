"""Parakeet through the edge: the official openai SDK → a real edge → asr-parakeet on the
tiny model. The words are meaningless; the shapes, the routing and the downgrade are real."""

from pathlib import Path

import aiohttp
import openai
import pytest

from aistack_asr_parakeet.models import MODEL_ID
from aistack_testing.processes import Service


@pytest.fixture(scope="module")
def client(edge: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=edge.url + "/v1", api_key="unused", max_retries=0)


async def test_models_list_parakeet_as_not_streaming(edge: Service) -> None:
    async with aiohttp.request("GET", edge.url + "/v1/models") as response:
        cards = {card["id"]: card for card in (await response.json())["data"]}
    assert cards[MODEL_ID]["supports_streaming"] is False
    assert cards[MODEL_ID]["supports_translate"] is False
    assert "de" in cards[MODEL_ID]["languages"]
    assert cards["auto"]["is_routing_alias"] is True


@pytest.mark.parametrize("model", ["parakeet", MODEL_ID, "auto"])
def test_verbose_json_with_word_times(
    client: openai.OpenAI, speech_wav: Path, long_speech: bytes, model: str
) -> None:
    result = client.audio.transcriptions.create(
        model=model,
        file=("long.wav", long_speech),
        language="de",  # a European hint: `auto` routes it to Parakeet
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "de"
    assert 25 < result.duration < 35
    assert result.segments and result.words
    assert result.text == " ".join(s.text for s in result.segments)
    times = [(w.start, w.end) for w in result.words]
    assert all(0 <= start <= end <= result.duration for start, end in times)
    assert times == sorted(times)
    assert result.words[-1].end > result.duration - 8  # the last window made it


def test_streaming_is_downgraded_to_one_delta_after_a_warning(
    client: openai.OpenAI, speech_wav: Path
) -> None:
    with speech_wav.open("rb") as f:
        events = list(client.audio.transcriptions.create(model="parakeet", file=f, stream=True))
    warning, delta, done = (event.model_dump() for event in events)
    assert warning["type"] == "warning" and warning["model"] == MODEL_ID
    assert delta["type"] == "transcript.text.delta"
    assert done["type"] == "transcript.text.done"
    assert delta["delta"] == done["text"] and done["text"]
    assert delta["segment"]["words"]
    assert 4 < done["duration"] < 6


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's translations endpoint
@pytest.mark.parametrize("endpoint", ["translations", "transcriptions"])
def test_translate_is_malformed(client: openai.OpenAI, speech_wav: Path, endpoint: str) -> None:
    with speech_wav.open("rb") as f, pytest.raises(openai.BadRequestError) as caught:
        if endpoint == "translations":
            client.audio.translations.create(model="parakeet", file=f)
        else:
            client.audio.transcriptions.create(
                model="parakeet", file=f, extra_body={"translate": "true"}
            )
    assert caught.value.status_code == 400
    assert caught.value.body["kind"] == "malformed"


def test_subtitle_cues_keep_the_spaces_between_words(
    client: openai.OpenAI, speech_wav: Path
) -> None:
    with speech_wav.open("rb") as f:
        result = client.audio.transcriptions.create(
            model="parakeet",
            file=f,
            response_format="verbose_json",
            extra_body={"segment_granularity": "subtitle"},
        )
    for cue in result.segments:
        assert len(cue.text) <= 70
        assert cue.end - cue.start <= 7
    cues = " ".join(cue.text.strip() for cue in result.segments)
    assert cues == " ".join(w.word for w in result.words)

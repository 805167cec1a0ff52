"""The transcription result (verbose_json) and the options a backend receives."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float | None = None


class Segment(BaseModel):
    id: int = 0
    seek: int = 0
    start: float
    end: float
    text: str
    tokens: list[int] = Field(default_factory=list)
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: list[Word] | None = None


class DurationUsage(BaseModel):
    """`usage` of a result billed by the audio's length, as OpenAI's `whisper-1` has it."""

    type: Literal["duration"] = "duration"
    seconds: float


class Logprob(BaseModel):
    """One entry of `logprobs` (`include[]=logprobs`): a token, its log-probability and
    its UTF-8 bytes. Whisper's token here is a word (see docs/transcriptions.md)."""

    token: str
    logprob: float
    bytes: list[int]


class TextResult(BaseModel):
    """The `json` response_format: the text, and the usage and logprobs OpenAI adds."""

    text: str
    logprobs: list[Logprob] | None = None
    usage: DurationUsage | None = None


class TranscriptionResult(BaseModel):
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str
    duration: float
    text: str
    segments: list[Segment]
    words: list[Word] | None = None
    usage: DurationUsage | None = None


class VadParameters(BaseModel):
    """`chunking_strategy`'s `server_vad` settings, for a backend whose VAD takes them
    (Whisper's Silero VAD); unset ones keep the backend's own."""

    threshold: float | None = Field(None, ge=0, le=1)
    prefix_padding_ms: int | None = Field(None, ge=0)
    silence_duration_ms: int | None = Field(None, ge=0)


class TranscribeOptions(BaseModel):
    """What the edge asks of an ASR backend besides the audio itself."""

    model: str
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    translate: bool = False
    word_timestamps: bool = True
    vad: VadParameters | None = None
    detect_only: bool = False
    """Answer with the info event alone: the language detected on the audio's first
    30 s (a backend whose model can detect it: Whisper)."""


class DiarizedSegment(BaseModel):
    """One speaker's run of words: an item of `diarized_json`'s `segments`, and the
    `transcript.text.segment` event of its stream (openai-python's
    TranscriptionDiarizedSegment and TranscriptionTextSegmentEvent, the same fields)."""

    # The answer always has `type`, as the SDK's type requires: the schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    speaker: str
    """A name of `known_speaker_names[]`, else `A`, `B`, ... in the order they first speak."""
    text: str


class DiarizedResult(BaseModel):
    """The `diarized_json` response_format (openai-python's TranscriptionDiarized)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
    task: Literal["transcribe"] = "transcribe"
    duration: float
    text: str
    segments: list[DiarizedSegment]
    usage: DurationUsage
    """Always given (the SDK's type has it optional)."""

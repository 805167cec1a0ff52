"""The transcription result (verbose_json) and the options a backend receives."""

from typing import Literal

from pydantic import BaseModel, Field


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


class TranscriptionResult(BaseModel):
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str
    duration: float
    text: str
    segments: list[Segment]
    words: list[Word] | None = None


class TranscribeOptions(BaseModel):
    """What the edge asks of an ASR backend besides the audio itself."""

    model: str
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    translate: bool = False
    word_timestamps: bool = True
    detect_only: bool = False
    """Answer with the info event alone: the language detected on the audio's first
    30 s (a backend whose model can detect it: Whisper)."""

"""Stream events: the public SSE of /v1/audio/transcriptions and the internal
newline-delimited JSON stream of a backend's POST /transcribe."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from aistack_contract.errors import ErrorBody
from aistack_contract.transcription import DurationUsage, Logprob, Segment, Word

# --- public SSE events -------------------------------------------------------


class DeltaSegment(BaseModel):
    start: float
    end: float
    words: list[Word] | None = None


class TextDelta(BaseModel):
    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    segment: DeltaSegment
    logprobs: list[Logprob] | None = None


class TextDone(BaseModel):
    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    language: str
    duration: float
    usage: DurationUsage
    logprobs: list[Logprob] | None = None


class StreamWarning(BaseModel):
    type: Literal["warning"] = "warning"
    code: str
    model: str
    message: str


class StreamError(BaseModel):
    type: Literal["error"] = "error"
    error: ErrorBody


# --- internal backend stream (NDJSON) ---------------------------------------


class BackendInfo(BaseModel):
    """First event: what the backend learned about the audio."""

    type: Literal["info"] = "info"
    language: str
    language_probability: float | None = None
    duration: float


class BackendSegment(BaseModel):
    type: Literal["segment"] = "segment"
    segment: Segment


class BackendDone(BaseModel):
    type: Literal["done"] = "done"
    duration: float | None = None
    """The audio's true duration, where the backend decoded it to the end: info's is
    what the file declared before decoding began, and may be off or 0."""


class BackendError(BaseModel):
    type: Literal["error"] = "error"
    error: ErrorBody


BackendEvent = Annotated[
    BackendInfo | BackendSegment | BackendDone | BackendError, Field(discriminator="type")
]
backend_event_adapter: TypeAdapter[BackendEvent] = TypeAdapter(BackendEvent)


def encode_backend_event(event: BackendInfo | BackendSegment | BackendDone | BackendError) -> bytes:
    return event.model_dump_json(exclude_none=True).encode() + b"\n"


def decode_backend_event(line: bytes) -> BackendEvent:
    return backend_event_adapter.validate_json(line)

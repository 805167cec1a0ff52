"""One background transcription job: what it was asked, how far it is, what it has
heard, and the public shapes of it (the job object, its SSE events, its result)."""

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from aistack_contract.errors import ErrorBody
from aistack_contract.events import BackendInfo, StreamError
from aistack_contract.transcription import Logprob, Segment
from aistack_edge.asr.form import TranscriptionForm
from aistack_edge.asr.render import render
from aistack_edge.asr.transcript import delta_of, done_of, logprobs_of, result_of, shape
from aistack_edge.jobs.audio import RATE

Status = Literal["queued", "in_progress", "completed", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class JobProgress(BaseModel):
    seconds_done: float
    seconds_total: float


class TranscriptionJob(BaseModel):
    """What `POST ...?background=true` answers and `GET .../{id}` returns."""

    id: str
    object: Literal["transcription.job"] = "transcription.job"
    status: Status
    model: str
    created_at: int
    """Unix seconds."""
    progress: JobProgress
    error: ErrorBody | None = None
    response_format: str
    result: Any = None
    """Once completed: the transcript in `response_format` (an object for the JSON
    formats, a string for text, srt and vtt)."""


class _Stored(BaseModel):
    """What a store keeps of a job: all of it."""

    id: str
    model: str
    form: TranscriptionForm
    audio: str
    samples_total: int
    created_at: int
    status: Status
    samples_done: int
    language: str | None
    segments: list[Segment]
    text: str
    logprobs: list[Logprob] | None
    events: list[str]
    error: ErrorBody | None
    finished_at: float | None


@dataclass
class Job:
    id: str
    model: str
    form: TranscriptionForm
    audio: Path
    """The decoded audio (16 kHz mono PCM), deleted when the job ends."""
    samples_total: int
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: Status = "queued"
    samples_done: int = 0
    """The checkpoint: every window before this sample is transcribed."""
    language: str | None = None
    segments: list[Segment] = field(default_factory=list)
    text: str = ""
    logprobs: list[Logprob] | None = None
    """None: not asked for (or the model has none); else those of the text so far."""
    events: list[str] = field(default_factory=list)
    """The SSE events so far, each a JSON object: the deltas, then `done` or an error."""
    error: ErrorBody | None = None
    finished_at: float | None = None
    """Unix time: when the job ended (its keep time counts from here)."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def dump(self) -> str:
        """The job as JSON, to keep in a store."""
        fields = {name: getattr(self, name) for name in _Stored.model_fields}
        return _Stored(**fields | {"audio": str(self.audio)}).model_dump_json()

    @classmethod
    def load(cls, raw: str | bytes) -> "Job":
        stored = _Stored.model_validate_json(raw)
        return cls(**dict(stored) | {"audio": Path(stored.audio)})

    @property
    def seconds_total(self) -> float:
        return self.samples_total / RATE

    @property
    def audio_bytes(self) -> int:
        """The room its audio takes while it is unfinished."""
        return self.samples_total * 2

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def changed(self) -> asyncio.Event:
        """An event set at the job's next change (a window done, its end)."""
        return self._changed

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def start(self) -> None:
        self.status = "in_progress"
        self._notify()

    def add_window(self, segments: list[Segment], end: int, language: str) -> None:
        """A window transcribed up to sample `end`: its segments (times from the
        recording's start) become deltas, and the checkpoint moves on."""
        self.language = self.language or language
        wanted = self.logprobs is not None
        for segment in segments:
            self.segments.append(segment)
            for piece in shape([segment], self.form.segment_granularity):
                delta = delta_of(piece, self.text, wanted)
                self.text += delta.delta
                if self.logprobs is not None:
                    self.logprobs += delta.logprobs or []
                self._event(delta)
        self.samples_done = end
        self._notify()

    def complete(self) -> None:
        if self.finished:
            return
        self._event(done_of(self._info(), self.text, self.logprobs))
        self._end("completed")

    def fail(self, error: ErrorBody, status: Status = "failed") -> None:
        if self.finished:
            return
        self.error = error
        self._event(StreamError(error=error))
        self._end(status)

    def _end(self, status: Status) -> None:
        """The job's one end (a cancel racing the last window's end keeps the first)."""
        self.status = status
        self.finished_at = time.time()
        self.audio.unlink(missing_ok=True)
        self._notify()

    def _event(self, event: BaseModel) -> None:
        self.events.append(event.model_dump_json(exclude_none=True))

    def _info(self) -> BackendInfo:
        return BackendInfo(language=self.language or "", duration=self.seconds_total)

    def public(self, response_format: str | None = None) -> TranscriptionJob:
        """The job object; with the result once completed, in `response_format` (the
        job's own when None)."""
        shown = response_format or self.form.response_format
        return TranscriptionJob(
            id=self.id,
            status=self.status,
            model=self.model,
            created_at=self.created_at,
            progress=JobProgress(
                seconds_done=round(self.samples_done / RATE, 3),
                seconds_total=round(self.seconds_total, 3),
            ),
            error=self.error,
            response_format=shown,
            result=self._result(shown) if self.status == "completed" else None,
        )

    def _result(self, response_format: str) -> Any:
        collected = shape(
            [s.model_copy(deep=True) for s in self.segments], self.form.segment_granularity
        )
        result = result_of(self._info(), collected, self.form.translate)
        logprobs = logprobs_of(result.words or []) if self.logprobs is not None else None
        answer = render(result, response_format, logprobs)
        if answer.content_type == "application/json":
            return json.loads(answer.body)  # type: ignore[arg-type]
        return answer.text

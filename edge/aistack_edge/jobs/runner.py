"""The background jobs of one edge, in process: submitted, run one at a time a window at
a time through the workload path's background lane, kept, then deleted.

A window is one GPU workload of its own: the slot is released at its end, so a waiting
interactive request (which always comes first) takes it there, and the job goes on from
its checkpoint afterwards. Each window is prompted with the end of the text before it,
as Whisper prompts its own windows.
"""

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path

from aiohttp import web

from aistack_contract.errors import AistackError, ErrorBody, ErrorKind
from aistack_contract.transcription import Segment, TranscribeOptions, Word
from aistack_edge.asr.form import Upload
from aistack_edge.asr.transcript import info_of, segments_of
from aistack_edge.catalog import Entry
from aistack_edge.config import EdgeSettings
from aistack_edge.errors import RetryLater, malformed, overflow
from aistack_edge.jobs import audio
from aistack_edge.jobs.job import Job
from aistack_edge.observability import exchange
from aistack_edge.state import CATALOG, SESSION, SETTINGS
from aistack_edge.upstreams import asr
from aistack_edge.workload import app_workload
from aistack_service.spool import Spool

log = logging.getLogger(__name__)

PROMPT_CHARS = 400
"""How much of the text before a window prompts it (Whisper keeps the last 224 tokens of
a prompt: about this many characters of English)."""
_RETRY_S = 2.0
_RETRIES = 30
"""A window that finds the GPU busy or its backend away is tried again this many times,
`_RETRY_S` apart, before the job fails: a backend restart takes seconds."""


class Jobs:
    """The jobs of this edge, in memory: they do not survive its restart."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        settings: EdgeSettings = app[SETTINGS]
        self._settings = settings
        self._own_dir = settings.jobs_dir is None
        self.dir = settings.jobs_dir or Path(tempfile.mkdtemp(prefix="aistack-jobs-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._queued = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()), asyncio.create_task(self._sweep())]

    async def close(self) -> None:
        for task in [*self._tasks, *self._running.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._running.values(), return_exceptions=True)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    async def submit(self, upload: Upload, entry: Entry) -> Job:
        """A new job for `upload` on `entry`'s model, its audio decoded into the jobs
        directory; refused (413) past the limits on jobs and on their audio."""
        unfinished = [job for job in self._jobs.values() if not job.finished]
        limit = self._settings.jobs_max_queued
        if len(unfinished) >= limit:
            raise overflow(
                f"{limit} background jobs are queued or running, the limit "
                "(AISTACK_JOBS_MAX_QUEUED): retry once one has finished"
            )
        room = self._settings.jobs_max_spool_bytes - sum(j.audio_bytes for j in unfinished)
        job_id = "transcr_job_" + os.urandom(12).hex()
        path = self.dir / f"{job_id}.pcm"
        try:
            samples = await asyncio.to_thread(_decode, upload.audio, path, max(room, 0))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        job = Job(job_id, entry.card.id, upload.form, path, samples)
        if upload.form.logprobs and entry.card.supports_logprobs:
            job.logprobs = []
        self._jobs[job_id] = job
        self._queue.append(job)
        self._queued.set()
        log.info("job %s: %.1f s of audio queued for %s", job_id, job.seconds_total, job.model)
        return job

    def cancel(self, job: Job) -> None:
        """Cancel `job`: a running window's backend job is stopped (the workload path
        does, before the slot is released)."""
        if job.finished:
            return
        job.fail(ErrorBody(kind=ErrorKind.CANCELLED, provider="aistack",
                           message="the job was cancelled"), "cancelled")  # fmt: skip
        if task := self._running.get(job.id):
            task.cancel()

    async def _work(self) -> None:
        """Run the queued jobs one after another, in the order they came."""
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            job = self._queue.popleft()
            if job.finished:
                continue  # cancelled while queued
            task = asyncio.create_task(self._run(job))
            self._running[job.id] = task
            try:
                await asyncio.wait([task])
            finally:
                self._running.pop(job.id, None)

    async def _run(self, job: Job) -> None:
        job.start()
        window = int(self._settings.jobs_window_s * audio.RATE)
        try:
            while job.samples_done < job.samples_total:
                start = job.samples_done
                end = audio.window_end(job.audio, start, job.samples_total, window)
                segments, language = await self._window(job, start, end)
                job.add_window(segments, end, language)
            job.complete()
            log.info("job %s completed", job.id)
        except AistackError as error:
            log.warning("job %s failed: %s", job.id, error.body.message)
            job.fail(error.body)
        except asyncio.CancelledError:
            if not job.finished:  # the edge shuts down
                job.fail(_error(ErrorKind.NETWORK, "the edge stopped while the job ran"))
            raise
        except Exception:
            log.exception("job %s failed", job.id)
            job.fail(_error(ErrorKind.UNKNOWN, "internal error in the gateway"))

    async def _window(self, job: Job, start: int, end: int) -> tuple[list[Segment], str]:
        """Samples `start` to `end` transcribed (one workload), times from the
        recording's start; tried again while the GPU is busy or the backend away."""
        for attempt in range(_RETRIES):
            try:
                return await self._transcribe_window(job, start, end)
            except RetryLater as error:
                if attempt + 1 == _RETRIES:
                    raise
                log.info("job %s: window at %.1f s waits: %s", job.id, start / audio.RATE,
                         error.body.message)  # fmt: skip
                await asyncio.sleep(_RETRY_S)
        raise AssertionError("unreachable")

    async def _transcribe_window(self, job: Job, start: int, end: int) -> tuple[list[Segment], str]:
        app = self._app
        entry = await self._entry(job.model)
        options = job.form.options_for(entry.card)
        options.language = options.language or job.language
        options.prompt = _prompt(job.form.prompt, job.text)
        wav = Spool()
        try:
            await wav.write(await asyncio.to_thread(audio.wav_of, job.audio, start, end))
            record, token = exchange.begin_part(job.id, "asr", time.perf_counter())
            record.lane = "background"
            try:
                return await self._call(app, job, entry, options, wav, start / audio.RATE)
            finally:
                exchange.end(token)
        finally:
            wav.close()

    async def _call(
        self,
        app: web.Application,
        job: Job,
        entry: Entry,
        options: TranscribeOptions,
        wav: Spool,
        offset_s: float,
    ) -> tuple[list[Segment], str]:
        record = exchange.current()
        assert record is not None
        async with app_workload(app, "asr", entry, record, job.id, background=True) as work:
            events = asr.transcribe(
                app[SESSION], entry, wav, "window.wav", options, work.job_id,
                self._settings.backend_timeout_s,
            )  # fmt: skip
            async with contextlib.aclosing(events):
                with work.guard():
                    info = await info_of(events, entry.provider)
                    heard = work.watch(segments_of(events, info, entry.provider))
                    segments = [segment async for segment in heard]
        return [_shifted(segment, offset_s) for segment in segments], info.language

    async def _entry(self, model: str) -> Entry:
        for entry in await self._app[CATALOG].of_capability("asr"):
            if entry.card.id == model:
                return entry
        raise RetryLater(f"no backend serves {model} right now", self._settings.retry_after_s)

    async def _sweep(self) -> None:
        """Delete finished jobs once they have been kept AISTACK_JOBS_KEEP_S."""
        keep_s = self._settings.jobs_keep_s
        while True:
            await asyncio.sleep(min(keep_s / 4, 60.0))
            now = time.monotonic()
            for job in list(self._jobs.values()):
                if job.finished_at is not None and now - job.finished_at >= keep_s:
                    del self._jobs[job.id]


def _decode(upload: Spool, path: Path, max_bytes: int) -> int:
    return audio.decode(upload.reader(), path, max_bytes)


def _prompt(asked: str | None, text: str) -> str | None:
    """The prompt of the next window: the end of the text so far (whole words), else
    the client's own prompt."""
    if not text:
        return asked
    tail = text[-PROMPT_CHARS:]
    return tail.partition(" ")[2] if len(text) > PROMPT_CHARS else tail


def _shifted(segment: Segment, offset_s: float) -> Segment:
    """`segment` with its times counted from the recording's start."""
    words = [
        Word(start=w.start + offset_s, end=w.end + offset_s, word=w.word, probability=w.probability)
        for w in segment.words or []
    ]
    return segment.model_copy(
        update={
            "start": segment.start + offset_s,
            "end": segment.end + offset_s,
            "words": words or segment.words,
        }
    )


def _error(kind: ErrorKind, message: str) -> ErrorBody:
    return ErrorBody(kind=kind, provider="aistack", message=message)


def refuse_unsupported(upload: Upload) -> None:
    """What a background job does not do (yet): stream its answer (read its events
    instead), or diarize."""
    if upload.form.stream:
        raise malformed(
            "background=true answers at once with a job: read its events at "
            "GET /v1/audio/transcriptions/{id}/events rather than stream=true"
        )
    if upload.form.response_format == "diarized_json":
        raise malformed("a background job does not diarize yet: leave out background=true")

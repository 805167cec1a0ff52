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
from pathlib import Path

import redis.exceptions
from aiohttp import web

from aistack_contract.errors import AistackError, ErrorBody, ErrorKind
from aistack_contract.transcription import Segment, TranscribeOptions, Word
from aistack_edge.asr.form import Upload
from aistack_edge.asr.transcript import info_of, segments_of
from aistack_edge.catalog import Entry
from aistack_edge.config import EdgeSettings
from aistack_edge.errors import RetryLater, malformed, overflow, unavailable
from aistack_edge.jobs import audio
from aistack_edge.jobs.job import Job
from aistack_edge.jobs.store import JobStore, MemoryJobs, RedisJobs
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
_RETRIES = 60
"""A window that finds the GPU busy or its backend away is tried again this many times,
`_RETRY_S` apart, before the job fails: a backend restart takes seconds, loading its
model maybe a minute."""


class Jobs:
    """The jobs of this edge: in Redis with AISTACK_REDIS_URL (durable, shared by every
    replica), else in process."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        settings: EdgeSettings = app[SETTINGS]
        self._settings = settings
        self._own_dir = settings.jobs_dir is None
        self.dir = settings.jobs_dir or Path(tempfile.mkdtemp(prefix="aistack-jobs-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store: JobStore
        if settings.redis_url:
            self.store = RedisJobs(
                settings.redis_url, settings.jobs_key, settings.jobs_keep_s,
                settings.jobs_claim_after_s,
            )  # fmt: skip
            if self._own_dir:
                log.info("jobs: AISTACK_JOBS_DIR is not set: a job's audio is lost with "
                         "this process, and no other replica can resume its jobs")  # fmt: skip
        else:
            self.store = MemoryJobs(settings.jobs_keep_s)
            log.info("jobs: in process (no Redis): they do not survive a restart")
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work())]

    async def close(self) -> None:
        for task in [*self._tasks, *self._running.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._running.values(), return_exceptions=True)
        await self.store.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    async def get(self, job_id: str) -> Job | None:
        return await self.store.get(job_id)

    async def submit(self, upload: Upload, entry: Entry) -> Job:
        """A new job for `upload` on `entry`'s model, its audio decoded into the jobs
        directory; refused (413) past the limits on jobs and on their audio."""
        unfinished = await self.store.unfinished()
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
        await self.store.add(job)
        log.info("job %s: %.1f s of audio queued for %s", job_id, job.seconds_total, job.model)
        return job

    async def cancel(self, job: Job) -> Job:
        """Cancel `job`: its running window's backend job is stopped (the workload path
        does, before the slot is released), by whichever replica runs it."""
        if job.finished:
            return job
        job.fail(_error(ErrorKind.CANCELLED, "the job was cancelled"), "cancelled")
        await self.store.save(job)
        if task := self._running.get(job.id):
            task.cancel()
        return job

    async def _work(self) -> None:
        """Run the jobs one after another, in the order they came."""
        while True:
            try:
                job = await self.store.take()
            except (OSError, redis.exceptions.RedisError) as exc:
                log.warning("jobs: could not read the queue: %s", exc)
                await asyncio.sleep(_RETRY_S)
                continue
            task = asyncio.create_task(self._run(job))
            self._running[job.id] = task
            watch = asyncio.create_task(self._watch(job, task))
            try:
                await asyncio.wait([task])
            finally:
                watch.cancel()
                self._running.pop(job.id, None)
            with contextlib.suppress(OSError, redis.exceptions.RedisError):
                stored = await self.store.get(job.id)
                if stored is None or stored.finished:  # cancelled here by another request
                    await self.store.done(job)

    async def _watch(self, job: Job, task: asyncio.Task[None]) -> None:
        """While `job` runs: renew this replica's claim on it, and stop it when it was
        cancelled elsewhere (on another replica)."""
        every_s = self._settings.jobs_claim_after_s / 3
        while not task.done():
            await asyncio.sleep(every_s)
            with contextlib.suppress(OSError, redis.exceptions.RedisError):
                await self.store.keep_claim(job)
                stored = await self.store.get(job.id)
                if stored is not None and stored.status == "cancelled" and stored is not job:
                    job.fail(stored.error or _error(ErrorKind.CANCELLED, "cancelled"), "cancelled")
                    task.cancel()

    async def _run(self, job: Job) -> None:
        resumed = job.status == "in_progress"
        job.start()
        if resumed:
            log.info("job %s resumed at %.1f s", job.id, job.samples_done / audio.RATE)
        window = int(self._settings.jobs_window_s * audio.RATE)
        try:
            if not job.audio.exists():
                raise unavailable(
                    "the job's audio is gone (AISTACK_JOBS_DIR is not shared, or was emptied)"
                )
            await self.store.save(job)
            while job.samples_done < job.samples_total:
                start = job.samples_done
                end = audio.window_end(job.audio, start, job.samples_total, window)
                segments, language = await self._window(job, start, end)
                job.add_window(segments, end, language)
                await self.store.save(job)
                log.info("job %s: transcribed to %.1f s", job.id, end / audio.RATE)
            job.complete()
            log.info("job %s completed", job.id)
        except AistackError as error:
            log.warning("job %s failed: %s", job.id, error.body.message)
            job.fail(error.body)
        except asyncio.CancelledError:
            if not job.finished and not self.store.durable:  # the edge shuts down
                job.fail(_error(ErrorKind.NETWORK, "the edge stopped while the job ran"))
            raise  # durable: another replica, or this edge restarted, goes on with it
        except Exception:
            log.exception("job %s failed", job.id)
            job.fail(_error(ErrorKind.UNKNOWN, "internal error in the gateway"))
        finally:
            if job.finished:
                await _unshielded_end(self.store, job)

    async def _window(self, job: Job, start: int, end: int) -> tuple[list[Segment], str]:
        """Samples `start` to `end` transcribed (one workload), times from the
        recording's start; tried again while the GPU is busy, the backend away (killed,
        restarting) or the lease lost: errors of kind `network`."""
        for attempt in range(_RETRIES):
            try:
                return await self._transcribe_window(job, start, end)
            except AistackError as error:
                if error.body.kind != ErrorKind.NETWORK or attempt + 1 == _RETRIES:
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


async def _unshielded_end(store: JobStore, job: Job) -> None:
    """Keep `job`'s end and take it off the queue, even while its task is cancelled."""
    with contextlib.suppress(OSError, redis.exceptions.RedisError):
        await asyncio.shield(_end(store, job))


async def _end(store: JobStore, job: Job) -> None:
    await store.save(job)
    await store.done(job)


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

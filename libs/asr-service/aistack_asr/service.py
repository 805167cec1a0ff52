"""A backend with its model cache and its running jobs: what the routes act on."""

import threading
import time
from collections import deque
from collections.abc import Generator
from typing import Any

from opentelemetry import trace

from aistack_asr.audio import Audio
from aistack_asr.backend import Backend, TranscribeEvent
from aistack_asr.cache import ModelCache
from aistack_asr.metrics import MODEL_LOAD
from aistack_asr.settings import AsrSettings
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.jobs import Jobs
from aistack_contract.models import ModelCard
from aistack_contract.transcription import TranscribeOptions
from aistack_service.memory import out_of_memory
from aistack_service.stuck import exit_when_stuck
from aistack_service.worker import Work, Worker

TRACER = trace.get_tracer("aistack_asr")
_FINISHED_KEPT = 1000


class AsrService:
    def __init__(self, backend: Backend, settings: AsrSettings) -> None:
        self.backend = backend
        self.settings = settings
        self.cache = ModelCache(self._load, backend.unload)
        self._workers: set[Worker] = set()
        self.jobs = exit_when_stuck(Jobs(backend.provider), settings)
        """The jobs by request id, from the request's arrival until its compute ended."""
        self.finished: deque[Worker] = deque(maxlen=_FINISHED_KEPT)
        """The latest ended jobs: when each computed (the slot's overlap checks read it)."""

    def cards(self) -> list[ModelCard]:
        """The backend's cards, each saying whether its model is loaded now."""
        loaded, backend = self.cache.loaded(), self.backend
        own = {"provider": backend.provider, "family": backend.family}
        return [
            card.model_copy(update={**own, "loaded": card.id in loaded}) for card in backend.cards()
        ]

    def card(self, model_id: str) -> ModelCard:
        for card in self.backend.cards():
            if card.id == model_id:
                return card
        raise AistackError(
            ErrorKind.MALFORMED, f"unknown model {model_id!r}", self.backend.provider
        )

    def start(self, options: TranscribeOptions, audio: Audio, request_id: str) -> Worker:
        """Transcribe on a worker thread: load (or reuse) the model, then stream events."""

        def work(cancel: threading.Event) -> Generator[TranscribeEvent, None, None]:
            with (
                self.cache.use(options.model) as model,
                TRACER.start_as_current_span("inference", attributes={"model": options.model}),
            ):
                yield from self.backend.transcribe(model, audio, options, cancel)

        return self.launch(work, request_id)

    def launch(self, work: Work, request_id: str) -> Worker:
        """Run `work` on a worker thread of its own, counted among the running jobs (and
        in the job log) until its thread has ended: a backend's own kind of job."""
        self._workers = {worker for worker in self._workers if worker.alive}
        worker = Worker(work, name=request_id)
        worker.when_ended(self.finished.append)
        self._workers.add(worker)
        worker.start()
        return worker

    def _load(self, model_id: str) -> Any:
        started = time.monotonic()
        with TRACER.start_as_current_span("load", attributes={"model": model_id}):
            try:
                model = self.backend.load(model_id)
            except AistackError:
                raise
            except Exception as exc:
                kind = ErrorKind.OVERFLOW if out_of_memory(exc) else ErrorKind.UNKNOWN
                message = f"loading {model_id} failed: {type(exc).__name__}: {exc}"
                raise AistackError(kind, message, self.backend.provider) from exc
        MODEL_LOAD.labels(model_id).observe(time.monotonic() - started)
        return model

    def job_log(self) -> list[dict[str, float | str | None]]:
        """Each job's compute interval (wall clock): the finished ones, then the running."""
        return [
            {"id": job.name, "started": job.started_at, "ended": job.ended_at}
            for job in [*self.finished, *(job for job in self._workers if job.alive)]
        ]

    def status(self) -> dict[str, Any]:
        """`GET /status`'s own fields: worker threads running (the fence waits for none),
        each job's compute interval, models loaded and in use."""
        return {
            "jobs": self.running_jobs(),
            "job_log": self.job_log(),
            "loaded": sorted(self.cache.loaded()),
            "in_use": self.cache.in_use(),
        }

    def running_jobs(self) -> int:
        """Worker threads still running, cancelled ones included until they end."""
        return sum(job.alive for job in self._workers)

    def stop_all(self, timeout: float = 2.0) -> None:
        """Cancel every job and wait (blocking) a little for their threads to end."""
        for job in self._workers:
            job.stop()
        for job in self._workers:
            job.join(timeout)

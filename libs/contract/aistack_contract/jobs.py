"""Jobs on the internal protocol: every backend of ours runs each request as a job named
by the caller's request id, and answers `DELETE /jobs/{id}` by cancelling that job and
saying, once its compute has stopped (or after `?wait=` seconds), whether it still runs.

The edge keeps the GPU slot until the answer says `running: false`: the slot covers the
work, not the HTTP exchange (closing a connection stops a backend only at its next step).
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

from pydantic import BaseModel

JOBS_PATH = "/jobs/{job_id}"
"""The route, relative to a backend's base URL."""

_FORGET_CANCELLED_S = 60.0


class JobState(BaseModel):
    """The answer of `DELETE /jobs/{id}`."""

    job: str
    running: bool


class JobCancelled(Exception):
    """A job was cancelled before its work began."""


class TrackedJob:
    """One tracked job: cancelled by `Jobs.stop`, ended when its `track` block ends."""

    def __init__(self, job_id: str) -> None:
        self.id = job_id
        self.cancelled = False
        self.ended = asyncio.Event()
        self._on_cancel: list[Callable[[], None]] = []

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the job is cancelled (at once if it already is)."""
        if self.cancelled:
            callback()
        else:
            self._on_cancel.append(callback)

    def check(self) -> None:
        """Raise JobCancelled if the job was cancelled: call it before work begins."""
        if self.cancelled:
            raise JobCancelled(self.id)

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            for callback in self._on_cancel:
                callback()


class Jobs:
    """A backend's running jobs by id. Event-loop side only.

    A job must be tracked for as long as its compute runs: the `track` block of a
    handler ends after its worker has stopped, not when its client went away. A stop
    that arrives before its job (the two travel on different connections) is remembered
    for a minute, and the job is cancelled as it begins."""

    def __init__(self) -> None:
        self._running: dict[str, TrackedJob] = {}
        self._cancelled_early: dict[str, float] = {}

    @contextlib.contextmanager
    def track(self, job_id: str) -> Iterator[TrackedJob]:
        job = TrackedJob(job_id)
        if self._cancelled_early.pop(job_id, None) is not None:
            job.cancel()
        self._running[job_id] = job
        try:
            yield job
        finally:
            job.ended.set()
            if self._running.get(job_id) is job:
                del self._running[job_id]

    def running(self) -> list[str]:
        return list(self._running)

    async def stop(self, job_id: str, wait_s: float) -> JobState:
        """Cancel `job_id` and wait up to `wait_s` for it to end."""
        job = self._running.get(job_id)
        if job is None:
            self._remember_cancelled(job_id)
            return JobState(job=job_id, running=False)
        job.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await job.ended.wait()
        return JobState(job=job_id, running=not job.ended.is_set())

    def _remember_cancelled(self, job_id: str) -> None:
        now = time.monotonic()
        self._cancelled_early = {
            known: at
            for known, at in self._cancelled_early.items()
            if now - at < _FORGET_CANCELLED_S
        }
        self._cancelled_early[job_id] = now


def wait_of(query: str | None, default_s: float = 5.0, most_s: float = 60.0) -> float:
    """The `?wait=` of a stop request, in seconds, bounded."""
    try:
        wait = float(query) if query is not None else default_s
    except ValueError:
        wait = default_s
    return min(max(wait, 0.0), most_s)

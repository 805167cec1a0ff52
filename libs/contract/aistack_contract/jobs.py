"""Jobs on the internal protocol: every backend of ours runs each request as a job named
by the caller's request id, and answers `DELETE /jobs/{id}` by cancelling that job and
saying, once its compute has stopped (or after `?wait=` seconds), whether it still runs.

The edge keeps the GPU slot until the answer says `running: false`: the slot covers the
work, not the HTTP exchange (closing a connection stops a backend only at its next step).
"""

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pydantic import BaseModel

from aistack_contract.errors import AISTACK, AistackError, ErrorKind

log = logging.getLogger(__name__)

JOBS_PATH = "/jobs/{job_id}"
"""The route, relative to a backend's base URL."""

FENCE_HEADER = "X-Aistack-Fence"
"""The fencing token of the GPU slot's lease a job runs under: a number that only grows
from one acquisition of the slot to the next. A backend refuses a job whose token is
older than the newest it has accepted (a holder that lost its lease, paused past its
TTL, cannot start work behind a newer one)."""


def fence_of(value: str | None) -> int | None:
    """The fencing token of a header's value; None when there is none (a direct caller)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise AistackError(
            ErrorKind.MALFORMED, f"{FENCE_HEADER} must be a whole number, not {value[:40]!r}"
        ) from None


_FORGET_CANCELLED_S = 60.0
_HANDLER_GRACE_S = 5.0


class JobState(BaseModel):
    """The answer of `DELETE /jobs/{id}`."""

    job: str
    running: bool


class JobCancelled(Exception):
    """A job was cancelled before its work began."""


class TrackedJob:
    """One tracked job: cancelled by `Jobs.stop`; ended once its `track` block has ended
    and every compute it started (a worker thread, a model's evaluation) has too."""

    def __init__(self, job_id: str, on_end: Callable[["TrackedJob"], None]) -> None:
        self.id = job_id
        self.cancelled = False
        self.ended = asyncio.Event()
        self._on_cancel: list[Callable[[], None]] = []
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()  # computes begin and end on any thread
        self._computing = 0
        self._handled = False
        self._handler = asyncio.current_task()

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
            self._loop.call_later(_HANDLER_GRACE_S, self._cut_off)

    def _cut_off(self) -> None:
        """A handler still running this long after its job's cancel is blocked on its
        caller (writing to a connection nobody reads, its caller paused): nobody wants
        its answer, and the job must end. Its `finally` still waits for the compute."""
        if not self._handled and self._handler is not None and not self._handler.done():
            self._handler.cancel()

    def begin_compute(self) -> bool:
        """Count a compute of this job as running (any thread); False, and not counted,
        once the job has ended: nobody waits for its result any more."""
        with self._lock:
            if self._handled and self._computing == 0:
                return False
            self._computing += 1
            return True

    def end_compute(self) -> None:
        """A compute counted by `begin_compute` has ended (any thread)."""
        with self._lock:
            self._computing -= 1
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(self._settle)

    def runs(self, worker: "Stoppable") -> None:
        """The job goes on until `worker` (begun by it) has ended, and a cancel stops it."""
        if self.begin_compute():
            worker.when_ended(lambda _: self.end_compute())
        self.on_cancel(worker.stop)

    def handled(self) -> None:
        """The handler's `track` block has ended: the job ends with its last compute."""
        self._handled = True
        self._settle()

    def _settle(self) -> None:
        with self._lock:
            done = self._handled and self._computing == 0
        if done and not self.ended.is_set():
            self.ended.set()
            self._on_end(self)


class Stoppable(Protocol):
    """A compute on a thread of its own (the service shell's Worker)."""

    def stop(self) -> None: ...
    def when_ended(self, callback: Callable[[Any], None]) -> None: ...


_CURRENT: contextvars.ContextVar[TrackedJob | None] = contextvars.ContextVar("job", default=None)


def current_job() -> TrackedJob | None:
    """The job whose `track` block this code runs in (its threads inherit it)."""
    return _CURRENT.get()


class Jobs:
    """A backend's running jobs by id. Event-loop side only.

    A job is tracked for as long as its compute runs: a worker begun within its `track`
    block registers with it (`current_job`), and the job ends when both the block and
    the worker have, whatever became of the handler (a hang-up cancels it). A stop
    that arrives before its job (the two travel on different connections) is remembered
    for a minute, and the job is cancelled as it begins."""

    def __init__(self, provider: str = AISTACK) -> None:
        self._provider = provider
        self._stuck_after_s: float | None = None
        self._on_stuck: Callable[[str, float], None] | None = None
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, TrackedJob] = {}
        self._cancelled_early: dict[str, float] = {}
        self.fence = 0
        """The newest fencing token accepted (0: none yet)."""

    def when_stuck(self, after_s: float, on_stuck: Callable[[str, float], None]) -> None:
        """Call `on_stuck(job_id, after_s)` when a cancelled job has not ended `after_s`
        after its cancel (the service shell exits then)."""
        self._stuck_after_s, self._on_stuck = after_s, on_stuck

    @contextlib.contextmanager
    def track(self, job_id: str, fence: int | None = None) -> Iterator[TrackedJob]:
        """Track `job_id` for the block and its computes. `fence`, the job's fencing
        token (FENCE_HEADER), is refused (network) when older than the newest accepted."""
        self.admit(job_id, fence)
        job = TrackedJob(job_id, self._forget)
        if self._cancelled_early.pop(job_id, None) is not None:
            job.cancel()
        self._running[job_id] = job
        token = _CURRENT.set(job)
        try:
            yield job
        finally:
            _CURRENT.reset(token)
            job.handled()

    def admit(self, job_id: str, fence: int | None) -> None:
        """Refuse `job_id` (network) when its fencing token is older than the newest
        accepted; else it is the newest. None (no token: a direct caller) is admitted."""
        if fence is None:
            return
        if fence < self.fence:
            log.warning(
                "job %s refused: its fencing token %d is older than %d (a newer holder of "
                "the GPU slot has started work here)", job_id, fence, self.fence,
            )  # fmt: skip
            raise AistackError(
                ErrorKind.NETWORK,
                f"the GPU slot's lease of this job was taken over (fencing token {fence} "
                f"is older than {self.fence}, already accepted): retry",
                self._provider,
            )
        self.fence = fence

    def _forget(self, job: TrackedJob) -> None:
        if self._running.get(job.id) is job:
            del self._running[job.id]

    def running(self) -> list[str]:
        return list(self._running)

    async def stop(self, job_id: str, wait_s: float) -> JobState:
        """Cancel `job_id` and wait up to `wait_s` for it to end."""
        job = self._running.get(job_id)
        if job is None:
            self._remember_cancelled(job_id)
            return JobState(job=job_id, running=False)
        job.cancel()
        self._watch(job)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await job.ended.wait()
        return JobState(job=job_id, running=not job.ended.is_set())

    def _watch(self, job: TrackedJob) -> None:
        """Give a cancelled job `stuck_after_s` to end, then call `on_stuck`."""
        if self._stuck_after_s is None or job.id in self._watches or job.ended.is_set():
            return

        async def watch() -> None:
            try:
                async with asyncio.timeout(self._stuck_after_s):
                    await job.ended.wait()
            except TimeoutError:
                assert self._on_stuck is not None and self._stuck_after_s is not None
                self._on_stuck(job.id, self._stuck_after_s)
            finally:
                del self._watches[job.id]

        self._watches[job.id] = asyncio.create_task(watch())

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

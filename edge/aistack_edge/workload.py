"""The one path every GPU workload takes, whatever its capability.

    refuse_if_busy ─▶ (the route reads and validates its body, finds its Entry)
        ─▶ gpu_workload: hold the slot ─▶ make room ─▶ the route's upstream call
        ─▶ the end: whole, or early (hang-up, timeout, error, lease lost)
        ─▶ early: cancel the backend's job, keep the slot until it has stopped
        ─▶ release

A route says only what is its own: how to parse, which upstream call, how to render.
The slot covers the work, not the HTTP exchange: a backend stops at its next step after
its connection closes, so an early end asks it to stop the job (`DELETE /jobs/{id}` of
the internal protocol) and holds the slot until it says it has. A lease found lost
interrupts the workload at once: the route's upstream wait raises LeaseLost (a 503, or
an SSE error event once the answer has started).
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.jobs import JOBS_PATH, JobState
from aistack_contract.models import Capability
from aistack_edge.catalog import Entry
from aistack_edge.hotswap import make_room
from aistack_edge.observability import exchange
from aistack_edge.slot import Lease
from aistack_edge.state import CATALOG, OBSERVABILITY, SESSION, SETTINGS, SLOT

log = logging.getLogger(__name__)

T = TypeVar("T")

_STILL_RUNNING_WAIT_S = 5.0


class LeaseLost(AistackError):
    def __init__(self) -> None:
        super().__init__(
            ErrorKind.NETWORK,
            "the GPU slot's lease was lost while this request ran (its store was "
            "unreachable, or another holder took it); the work was stopped: retry",
        )


def refuse_if_busy(request: web.Request) -> None:
    """Refuse now, before the body is read, when this edge knows the slot is busy (the
    envelope middleware then ends the connection rather than read a body for nothing)."""
    request.app[SLOT].refuse_if_busy()


async def continue_unless_busy(request: web.Request) -> None:
    """The routes' `Expect: 100-continue` handler: no `100 Continue` when the slot is
    busy here; the handler's 503 is the answer, and the body is never sent."""
    if request.app[SLOT].busy_here():
        return
    expect = request.headers.get("Expect", "")
    if request.version != aiohttp.HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0


class Workload:
    """One workload, from holding the slot to releasing it."""

    def __init__(
        self,
        entry: Entry,
        job_id: str,
        lease: Lease,
        release: Callable[[], Awaitable[object]],
        last_step: Callable[[], Awaitable[None]] | None,
        record: exchange.Exchange,
    ) -> None:
        self.entry = entry
        self.job_id = job_id
        self._record = record
        self.completed = False
        """Set when the upstream's answer was read to its end: its job ended there."""
        self._lease = lease
        self._release = release
        self._last_step = last_step
        self._guarded: list[asyncio.Task] = []
        lease.when_lost(self._interrupt)

    def switch_to(self, entry: Entry) -> None:
        """The workload goes on on `entry`'s backend (the language detected, the request
        is routed): an early end stops the job there."""
        self.entry = entry
        self._record.model = entry.card.id

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Within this block, a lost lease raises LeaseLost (as asyncio.timeout raises
        TimeoutError): put it where the route can still answer that error."""
        if self._lease.lost:
            raise LeaseLost()
        task = asyncio.current_task()
        assert task is not None
        self._guarded.append(task)
        try:
            yield
        except asyncio.CancelledError:
            if self._lease.lost and task.uncancel() == 0:
                raise LeaseLost() from None
            raise
        finally:
            self._guarded.remove(task)

    async def watch(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """`items`, the upstream's answer; read to its end, the workload is complete."""
        async for item in items:
            yield item
        await self.finish()

    async def finish(self) -> None:
        """The upstream's answer was read to its end, so its job has ended: take the
        last step and release the slot now, before the answer's last bytes leave. A
        client that sends its next request as soon as it has this answer finds the slot
        free."""
        if self.completed:
            return
        if self._last_step is not None:
            await self._last_step()
        self.completed = True
        await self._release()

    def _interrupt(self) -> None:
        for task in set(self._guarded):
            task.cancel()


@contextlib.asynccontextmanager
async def gpu_workload(
    request: web.Request,
    capability: Capability,
    entry: Entry,
    last_step: Callable[[], Awaitable[None]] | None = None,
    *,
    part: exchange.Exchange | None = None,
    wait_s: float | None = None,
) -> AsyncIterator[Workload]:
    """Hold the slot for a workload on `entry`'s backend and make room for it; on an
    early end, stop the backend's job before the slot is released. `last_step` is GPU
    work of the route's own once the answer is whole, still in the slot.

    `part`: the workload is one part of a long request (an utterance of a realtime
    session), with an exchange of its own whose id names the backend's job. `wait_s`
    overrides AISTACK_SLOT_WAIT_S: how long to wait in line for the slot."""
    app = request.app
    record = part or exchange.of(request)
    request_id = part.request_id if part else request["request_id"]
    record.model = entry.card.id
    # The backend's job is named by the edge, never by a client: a client's X-Request-ID
    # could name (and so stop) another client's job. The slot's holder, which a busy
    # 503 shows, names this job, not the request.
    job_id = os.urandom(12).hex()
    log.info("request %s: %s job %s", request_id, capability, job_id)
    holder = f"{capability} {entry.card.id} (job {job_id})"
    async with contextlib.AsyncExitStack() as held:
        lease = await held.enter_async_context(app[SLOT].hold(holder, wait_s))
        work = Workload(entry, job_id, lease, held.aclose, last_step, record)
        try:
            with work.guard():
                await make_room(app, capability, entry.upstream)
                yield work
        finally:
            if not work.completed:
                await _uncancelled(_stop_job(app, work))


async def _uncancelled(call: Awaitable[None]) -> None:
    """Await `call` to its end even if this task is cancelled meanwhile (the cancel is
    passed on after): the slot must not be released while the backend computes."""
    task = asyncio.ensure_future(call)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


async def _stop_job(app: web.Application, work: Workload) -> None:
    """Ask the backend to stop the job and wait until it has, up to the grace time;
    past it, the backend gets no new work until the job has stopped."""
    settings, session = app[SETTINGS], app[SESSION]
    grace_s = settings.stop_grace_s
    url = work.entry.upstream + JOBS_PATH.format(job_id=work.job_id)
    running = await _ask_stop(session, url, grace_s)
    if not running:
        return
    log.error(
        "%s did not stop job %s within %g s: it gets no new work until it has",
        work.entry.provider,
        work.job_id,
        grace_s,
    )
    app[OBSERVABILITY].stop_overrun()
    catalog = app[CATALOG]
    catalog.hold_back(work.entry.upstream)

    async def watch_until_stopped() -> None:
        while await _ask_stop(session, url, _STILL_RUNNING_WAIT_S):
            continue  # each ask waits up to its time for the job to end
        catalog.take_back(work.entry.upstream)
        log.info("%s stopped job %s: it takes work again", work.entry.provider, work.job_id)

    _background(asyncio.create_task(watch_until_stopped()))


async def _ask_stop(session: aiohttp.ClientSession, url: str, wait_s: float) -> bool:
    """Whether the job at `url` still runs after a stop request that waits `wait_s`.

    A backend that doesn't speak the jobs protocol (Ollama, vLLM) has only the closed
    connection to stop it; one that can't be reached is not computing for us."""
    timeout = aiohttp.ClientTimeout(total=wait_s + 5)
    try:
        async with session.delete(url, params={"wait": str(wait_s)}, timeout=timeout) as r:
            if r.status != 200:
                return False
            return JobState.model_validate_json(await r.read()).running
    except (aiohttp.ClientError, TimeoutError, ValidationError) as exc:
        log.info("no job state from %s: %s", url, str(exc) or type(exc).__name__)
        return False


_BACKGROUND: set[asyncio.Task] = set()


def _background(task: asyncio.Task) -> None:
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def stop_watching() -> None:
    """At shutdown: end the watches of held-back backends (before the session they ask
    with is closed)."""
    for task in set(_BACKGROUND):
        task.cancel()
    await asyncio.gather(*_BACKGROUND, return_exceptions=True)

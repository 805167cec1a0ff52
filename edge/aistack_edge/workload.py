"""The one path every GPU workload takes, whatever its capability.

    refuse_if_busy ─▶ (the route reads and validates its body, finds its Entry)
        ─▶ gpu_workload: hold the slot (its fencing token goes with every backend call)
        ─▶ idle before start: no backend on the GPU runs a job (else wait, else 503)
        ─▶ make room (Ollama: until its models are gone) ─▶ the route's upstream call
        ─▶ the end: whole, or early (hang-up, timeout, error, lease lost)
        ─▶ early: cancel the backend's job, keep the slot until it has stopped
           (past AISTACK_STOP_GRACE_S too, by a task of its own while the answer leaves:
           logged and shown, never released on a timer; a backend on the service shell
           exits, a named container is restarted, and a process gone is stopped)
        ─▶ release

A route says only what is its own: how to parse, which upstream call, how to render.
The slot covers the work, not the HTTP exchange: a backend stops at its next step after
its connection closes, so an early end asks it to stop the job (`DELETE /jobs/{id}` of
the internal protocol) and holds the slot until it says it has; a backend without that
protocol (vLLM, Ollama) is asked what it runs (`slot.idle`). A lease found lost
interrupts the workload at once: the route's upstream wait raises LeaseLost (a 503, or
an SSE error event once the answer has started).
"""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.jobs import JOBS_PATH, JobState
from aistack_contract.models import Capability
from aistack_edge.catalog import Entry
from aistack_edge.hotswap import make_room, unload_ollama
from aistack_edge.observability import exchange
from aistack_edge.slot import Lease
from aistack_edge.slot.fencing import fenced
from aistack_edge.slot.idle import GpuBusy
from aistack_edge.slot.lease import BACKGROUND
from aistack_edge.slot.restart import restart_container
from aistack_edge.state import IDLE, OBSERVABILITY, SESSION, SETTINGS, SLOT

log = logging.getLogger(__name__)

T = TypeVar("T")

_STILL_RUNNING_WAIT_S = 5.0
_ASK_AGAIN_S = 0.1  # between stop requests that got no answer, and idle readings


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
    record = part or exchange.of(request)
    request_id = part.request_id if part else request["request_id"]
    async with app_workload(
        request.app, capability, entry, record, request_id, last_step, wait_s=wait_s
    ) as work:
        yield work


@contextlib.asynccontextmanager
async def app_workload(
    app: web.Application,
    capability: Capability,
    entry: Entry,
    record: exchange.Exchange,
    request_id: str,
    last_step: Callable[[], Awaitable[None]] | None = None,
    *,
    wait_s: float | None = None,
    background: bool = False,
) -> AsyncIterator[Workload]:
    """`gpu_workload` for work of the edge's own with no request of its own (a
    background job's window: `background`, it waits until no one else does)."""
    record.model = entry.card.id
    # The backend's job is named by the edge, never by a client: a client's X-Request-ID
    # could name (and so stop) another client's job. The slot's holder, which a busy
    # 503 shows, names this job, not the request.
    job_id = os.urandom(12).hex()
    log.info("request %s: %s job %s", request_id, capability, job_id)
    holder = f"{BACKGROUND if background else ''}{capability} {entry.card.id} (job {job_id})"
    settings = app[SETTINGS]
    idle_wait_s = max(settings.idle_wait_s, settings.slot_wait_s if wait_s is None else wait_s)
    async with contextlib.AsyncExitStack() as held:
        lease = await held.enter_async_context(app[SLOT].hold(holder, wait_s, background))
        work = Workload(entry, job_id, lease, held.aclose, last_step, record)
        with fenced(lease.fence):
            if settings.idle_check:
                with work.guard():
                    await app[IDLE].wait_idle(idle_wait_s, settings.retry_after_s)
            try:
                with work.guard():
                    await make_room(app, capability, entry.upstream)
                    if (
                        settings.idle_check
                        and capability != "llm"
                        and settings.swap_policy != "shared"
                    ):
                        await app[IDLE].wait_ollama_idle(idle_wait_s, settings.retry_after_s)
                    yield work
            finally:
                if not work.completed:
                    await _uncancelled(_stop_job(app, work, held))


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


async def _stop_job(app: web.Application, work: Workload, held: contextlib.AsyncExitStack) -> None:
    """Ask the backend to stop the job and wait until it has, the slot held (`held`).
    Past the grace, the job is logged as stuck and shown (admin status, /metrics), and
    the slot stays held by a task of its own (`held` is handed to it) until the job has
    stopped: the request's answer (its error, its end) leaves meanwhile. A backend on
    the service shell exits when its job outlives its own grace after the cancel (its
    supervisor brings it back), and a process gone runs nothing."""
    settings = app[SETTINGS]
    began = time.monotonic()
    if await _stopped_within(app, work, settings.stop_grace_s):
        return
    log.error(
        "%s did not stop job %s within %g s: the GPU slot stays held until it has",
        work.entry.provider,
        work.job_id,
        settings.stop_grace_s,
    )
    app[OBSERVABILITY].stop_overrun()
    _background(asyncio.create_task(_hold_until_stopped(app, work, held.pop_all(), began)))


async def _hold_until_stopped(
    app: web.Application, work: Workload, lease: contextlib.AsyncExitStack, began: float
) -> None:
    """Keep the slot (`lease`) for a stuck job until it has stopped, its backend's
    container restarted first where one is named (AISTACK_RESTART_CONTAINERS); cancelled
    at the edge's shutdown (the lease ends with the edge)."""
    settings = app[SETTINGS]
    async with lease:
        with app[SLOT].stuck_on(work.entry.upstream, work.job_id):
            if container := settings.restart_containers.get(work.entry.upstream):
                await restart_container(settings.docker_socket, container)
            await _until_stopped(app, work)
    log.info(
        "%s stopped job %s after %.1f s: the GPU slot is released",
        work.entry.provider, work.job_id, time.monotonic() - began,
    )  # fmt: skip


async def _until_stopped(app: web.Application, work: Workload) -> None:
    while not await _stopped_within(app, work, _STILL_RUNNING_WAIT_S):
        continue


async def _stopped_within(app: web.Application, work: Workload, wait_s: float) -> bool:
    """Whether the job has stopped within `wait_s` of asking it to."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        if await _ask_stop(app, work, max(0.0, deadline - loop.time())):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_ASK_AGAIN_S)


async def _ask_stop(app: web.Application, work: Workload, wait_s: float) -> bool:
    """Whether the job at its backend has stopped, asked to stop and waited up to
    `wait_s`. A backend that doesn't speak the jobs protocol (vLLM, Ollama) is asked
    what it runs instead; one that refuses the connection runs nothing (its process is
    gone); one that does not answer at all (hung) is taken as stopped, logged: it
    computes nothing meanwhile, and holding the slot for it would hold the request's
    answer too."""
    session = app[SESSION]
    url = work.entry.upstream + JOBS_PATH.format(job_id=work.job_id)
    timeout = aiohttp.ClientTimeout(total=wait_s + 5)
    try:
        async with session.delete(url, params={"wait": str(wait_s)}, timeout=timeout) as r:
            if r.status == 200:
                return not JobState.model_validate_json(await r.read()).running
            if r.status not in (404, 405):
                raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
    except aiohttp.ClientConnectorError:
        return True
    except (aiohttp.ClientError, TimeoutError, ValidationError) as exc:
        log.warning("no job state from %s: %s", url, str(exc) or type(exc).__name__)
        return True
    return await _idle_without_jobs(app, work.entry, wait_s)


async def _idle_without_jobs(app: web.Application, entry: Entry, wait_s: float) -> bool:
    """Whether a backend without the jobs protocol runs nothing, within `wait_s`: Ollama
    once its models are unloaded (it tears a runner down only after its requests end),
    any other by what it reports (vLLM's metrics)."""
    settings, idle = app[SETTINGS], app[IDLE]
    try:
        if entry.upstream == settings.ollama_url:
            await unload_ollama(app[SESSION], entry.upstream, settings.swap_timeout_s)
            await idle.wait_ollama_idle(wait_s, settings.retry_after_s)
        else:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            while (await idle.read(entry.upstream)).busy:
                if loop.time() >= deadline:
                    return False
                await asyncio.sleep(_ASK_AGAIN_S)
    except GpuBusy:
        return False
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
        log.info("no job count from %s: %s", entry.upstream, str(exc) or type(exc).__name__)
        return False
    return True


_BACKGROUND: set[asyncio.Task] = set()


def _background(task: asyncio.Task) -> None:
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def stop_watching(app: web.Application | None = None) -> None:
    """At shutdown: end the watches of stuck jobs (their workloads then release the slot,
    as the edge's exit would by the lease's TTL), before the session they ask with is
    closed."""
    for task in set(_BACKGROUND):
        task.cancel()
    await asyncio.gather(*_BACKGROUND, return_exceptions=True)

"""Acquire, keep and release the GPU slot over a lease store.

A lease's token is `<uuid>.<acquired, epoch ms> <holder>`: unique per request, and
readable, so a busy answer can name who holds the slot and the admin page for how long.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry import trace

from aistack_contract.telemetry import current_span
from aistack_edge.errors import SlotBusy, SlotSettling, SlotStoreDown
from aistack_edge.slot.stores import LeaseStore

log = logging.getLogger(__name__)

_POLL_S = 0.02
_BACKGROUND_POLL_S = 0.1  # a background job looks for a free slot no one waits for
BACKGROUND = "background "
"""How a background job's holder name begins: an interactive request that finds the
slot held by one (on any edge, by its token) waits for its window to end."""
_RETRY_S = 0.1  # between renewals while the store is down
# With no renewal for this share of the TTL the lease counts as lost, and its workload
# is stopped: the rest of the TTL is the time its backend has to stop before the key
# expires and another holder can start.
_GIVE_UP_SHARE = 2 / 3
_TRACER = trace.get_tracer("aistack_edge.slot")


class SlotObserver(Protocol):
    """Told how long each acquisition waited and each lease was held."""

    def acquired(self, waited_s: float) -> None: ...
    def refused(self, waited_s: float) -> None: ...
    def released(self, held_s: float) -> None: ...
    def lost(self) -> None: ...
    def stuck(self, backend: str, since: float | None) -> None:
        """The slot is held past the stop grace by `backend`'s job since `since` (wall
        clock); None: no longer."""
        ...


class Unobserved:
    """An observer that is told and does nothing: the default, and a base for others."""

    def acquired(self, waited_s: float) -> None:
        pass

    def refused(self, waited_s: float) -> None:
        pass

    def released(self, held_s: float) -> None:
        pass

    def lost(self) -> None:
        pass

    def stuck(self, backend: str, since: float | None) -> None:
        pass


@dataclass(frozen=True)
class Stuck:
    """A cancelled job that did not stop within the grace: the slot stays held for it."""

    backend: str
    job: str
    since: float
    """Wall clock."""


@dataclass(frozen=True)
class Holding:
    """Who holds the slot, and for how long when its token says (this edge's own do)."""

    holder: str
    held_s: float | None


@dataclass
class Lease:
    token: str
    holder: str
    acquired_at: float = field(default_factory=time.monotonic)
    fence: int = 0
    """The fencing token of this acquisition: greater than any before it."""
    lost: bool = False
    background: bool = False
    """Held by a background job, which gives the slot up at its next window's end."""
    _when_lost: list[Callable[[], None]] = field(default_factory=list)

    def when_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the event loop) if the lease is lost while held."""
        self._when_lost.append(callback)

    def lose(self, why: str) -> None:
        if self.lost:
            return
        self.lost = True
        log.warning("GPU slot lease of %s lost: %s; its workload is stopped", self.holder, why)
        for callback in self._when_lost:
            callback()


class Slot:
    """The one GPU slot. Busy answers at once unless `wait_s` > 0, in which case
    requests wait first come, first served, up to `wait_s`; at most `wait_max` of them
    (None: no bound), one more is busy at once.

    While this edge holds the slot, it refuses (or keeps waiting) without asking the
    store: nobody else can get the slot while our lease lives, so the answer is known.
    So it does while one of its requests is asking the store for the slot: that one
    gets it, or someone else has it; either way the slot is busy.

    Two lanes: a background job (`hold(..., background=True)`) takes the slot only when
    no request of this edge waits or is taking it, and an interactive request that finds
    a background job holding it waits in line (up to `background_wait_s`) instead of
    being refused: the job releases the slot at the end of each window."""

    def __init__(
        self,
        store: LeaseStore,
        ttl_ms: int,
        wait_s: float,
        retry_after_s: int,
        observer: SlotObserver | None = None,
        wait_max: int | None = None,
        background_wait_s: float = 300.0,
    ) -> None:
        self.store = store
        self._wait_max = wait_max
        self._background_wait_s = background_wait_s
        self.observer: SlotObserver = observer or Unobserved()
        self._ttl_ms = ttl_ms
        self._wait_s = wait_s
        self._retry_after_s = retry_after_s
        self._line: deque[object] = deque()
        self._ours: Lease | None = None
        self._taking = False
        self._orphans: set[asyncio.Task[None]] = set()
        self.stuck: list[Stuck] = []
        """Jobs this edge holds the slot for past the stop grace (admin status, /metrics)."""

    @property
    def waiting(self) -> int:
        """How many requests of this edge wait in line."""
        return len(self._line)

    async def holder(self) -> str | None:
        holding = await self.holding()
        return holding.holder if holding else None

    async def holding(self) -> Holding | None:
        token = await self.store.current()
        if token is None:
            return None
        unique, _, holder = token.partition(" ")
        _, _, since_ms = unique.partition(".")
        held_s = time.time() - int(since_ms) / 1000 if since_ms.isdigit() else None
        return Holding(holder, held_s)

    async def settling_s(self) -> float:
        """How long nobody may take the slot yet, the store having just started empty."""
        return await self.store.settling_ms(self._ttl_ms) / 1000

    @contextlib.contextmanager
    def stuck_on(self, backend: str, job: str) -> Iterator[None]:
        """For the block, the slot is held for `backend`'s `job`, past the stop grace."""
        entry = Stuck(backend, job, time.time())
        self.stuck.append(entry)
        self.observer.stuck(backend, entry.since)
        try:
            yield
        finally:
            self.stuck.remove(entry)
            if not any(other.backend == backend for other in self.stuck):
                self.observer.stuck(backend, None)

    def busy_here(self) -> bool:
        """Whether `refuse_if_busy` would refuse now."""
        return self._wait_s <= 0 and self._busy_here() is not None

    def refuse_if_busy(self) -> None:
        """Raise SlotBusy now when `hold` would refuse without asking the store (this
        edge holds the slot or is taking it, and requests don't wait). A route calls it
        before it reads a body that it would read for nothing."""
        if self._wait_s <= 0 and (busy := self._busy_here()) is not None:
            self.observer.refused(0.0)
            raise busy

    @contextlib.asynccontextmanager
    async def hold(
        self, holder: str, wait_s: float | None = None, background: bool = False
    ) -> AsyncIterator[Lease]:
        """Hold the slot for the body of the `async with`; released whatever happens.
        `wait_s` overrides the slot's own wait (a realtime utterance waits in line);
        `background`: the slot is taken once no one else waits for it (`holder` must
        begin with BACKGROUND), however long that takes."""
        started = time.monotonic()
        with current_span(_TRACER, "slot.acquire", attributes={"holder": holder}):
            try:
                if background:
                    lease = await self._take_after_others(holder)
                else:
                    lease = await self._acquire(holder, self._wait_s if wait_s is None else wait_s)
            except SlotBusy:
                self.observer.refused(time.monotonic() - started)
                raise
        self.observer.acquired(lease.acquired_at - started)
        self._ours = lease
        lease.when_lost(self.observer.lost)
        renewer = asyncio.create_task(self._keep(lease))
        try:
            yield lease
        finally:
            # Before the await: a cancelled request's finally stops at it.
            renewer.cancel()
            self._ours = None
            self.observer.released(time.monotonic() - lease.acquired_at)
            await asyncio.shield(self._release(lease))

    def _held_here(self) -> Lease | None:
        """This edge's live lease, if it holds the slot."""
        return self._ours if self._ours is not None and not self._ours.lost else None

    def _busy_here(self) -> SlotBusy | None:
        """The refusal that needs no store: this edge holds the slot, or one of its
        requests is asking the store for it."""
        if ours := self._held_here():
            return None if ours.background else SlotBusy(ours.holder, self._retry_after_s)
        if self._taking:
            return SlotBusy(None, self._retry_after_s)
        return None

    async def _acquire(self, holder: str, wait_s: float) -> Lease:
        if wait_s > 0:
            return await self._wait_in_line(holder, wait_s)
        if busy := self._busy_here():
            raise busy
        self._taking = True
        try:
            if lease := await self._try_take(holder):
                return lease
            holding = await self.holder()
        finally:
            self._taking = False
        if holding is not None and holding.startswith(BACKGROUND):
            return await self._wait_in_line(holder, self._background_wait_s)
        raise SlotBusy(holding, self._retry_after_s)

    async def _take_after_others(self, holder: str) -> Lease:
        """The slot, for a background job: taken only when no request of this edge waits
        in line or is taking it (they come first), and it is free."""
        while True:
            if not self._line and not self._taking and self._ours is None:
                with contextlib.suppress(SlotSettling, SlotStoreDown):
                    if lease := await self._try_take(holder):
                        lease.background = True
                        return lease
            await asyncio.sleep(_BACKGROUND_POLL_S)

    async def _try_take(self, holder: str) -> Lease | None:
        """A new lease for `holder`, or None when someone holds the slot.

        The lease's clock starts before the store is asked, so that it never counts on
        more of the TTL than the store gives it. A call cut short (cancelled, or its
        answer lost) may have set the key all the same: that token is released."""
        token, asked_at = _token(holder), time.monotonic()
        try:
            fence = await self.store.try_set(token, self._ttl_ms)
        except BaseException:
            self._release_orphan(token)
            raise
        return Lease(token, holder, acquired_at=asked_at, fence=fence) if fence else None

    def _release_orphan(self, token: str) -> None:
        task = asyncio.create_task(self._release(Lease(token, "an acquisition cut short")))
        self._orphans.add(task)
        task.add_done_callback(self._orphans.discard)

    async def _wait_in_line(self, holder: str, wait_s: float) -> Lease:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        if self._wait_max is not None and len(self._line) >= self._wait_max:
            ours = self._held_here()
            raise SlotBusy(ours.holder if ours else await self.holder(), self._retry_after_s)
        ticket = object()
        self._line.append(ticket)  # before any await: the line keeps the order of arrival
        try:
            while True:
                ours = self._held_here()
                if self._line[0] is ticket and ours is None:
                    with contextlib.suppress(SlotSettling):
                        if lease := await self._try_take(holder):
                            return lease
                remaining = deadline - loop.time()
                if remaining <= 0:
                    holding = ours.holder if ours else await self.holder()
                    raise SlotBusy(holding, self._retry_after_s)
                await asyncio.sleep(min(_POLL_S, remaining))
        finally:
            self._line.remove(ticket)

    async def _keep(self, lease: Lease) -> None:
        """Renew the lease well inside its TTL for as long as it is held. While the
        store is down, retry often: the lease must be back (retaken if the store lost
        it) before anyone else can take it. Another holder's token, or no renewal for
        `_GIVE_UP_SHARE` of the TTL, loses the lease."""
        interval = self._ttl_ms / 3000
        give_up_s = self._ttl_ms * _GIVE_UP_SHARE / 1000
        renewed_at = lease.acquired_at
        down = False
        while True:
            deadline = renewed_at + give_up_s
            pause = min(interval, _RETRY_S) if down else interval
            await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            asked_at = time.monotonic()
            try:
                async with asyncio.timeout(deadline - asked_at):
                    kept = await self.store.renew(lease.token, self._ttl_ms)
            except TimeoutError:
                lease.lose(f"no renewal for {give_up_s:.1f} s")
                return
            except SlotStoreDown as exc:
                if not down:
                    log.warning("could not renew the GPU slot lease: %s", exc.body.message)
                down = True
                continue
            if down:
                log.info("GPU slot lease of %s renewed again", lease.holder)
                down = False
            if not kept:
                lease.lose("another holder has the slot")
                return
            renewed_at = asked_at

    async def _release(self, lease: Lease) -> None:
        try:
            await self.store.release(lease.token)
        except SlotStoreDown as exc:
            log.warning("could not release the GPU slot lease (its TTL will): %s", exc.body.message)


def _token(holder: str) -> str:
    """A lease token for `holder` (see the module's docstring)."""
    return f"{uuid.uuid4().hex}.{time.time_ns() // 1_000_000} {holder}"

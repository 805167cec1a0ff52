"""The slot's two lanes: a background job takes the GPU slot only when no interactive
request waits for it, and an interactive request that finds a job holding it waits for
the job's window to end instead of being refused."""

import asyncio

import pytest

from aistack_edge.errors import SlotBusy
from aistack_edge.slot import MemoryStore, RedisStore, Slot
from aistack_edge.slot.lease import BACKGROUND
from aistack_testing.asr_protocol import wait_until

JOB = BACKGROUND + "asr whisper (job j)"
SLOT_KEY = "aistack:test-lanes"


def _slot(store=None, wait_s: float = 0.0) -> Slot:
    return Slot(store or MemoryStore(), 60_000, wait_s, 5, background_wait_s=60)


class Holder:
    """A task that holds the slot, once it has it, until told to let go."""

    def __init__(self, slot: Slot, holder: str, background: bool = False) -> None:
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.lease = None
        self.task = asyncio.create_task(self._hold(slot, holder, background))

    async def _hold(self, slot: Slot, holder: str, background: bool) -> None:
        async with slot.hold(holder, background=background) as lease:
            self.lease = lease
            self.held.set()
            await self.release.wait()

    async def let_go(self) -> None:
        self.release.set()
        await asyncio.wait_for(self.task, 10)


async def _polls() -> None:
    """Long enough for every waiter to poll the slot several times: for what must *not*
    happen meanwhile (a waiter taking the slot out of its turn)."""
    await asyncio.sleep(0.5)


async def _in_line(slot: Slot, count: int) -> None:
    """Until `count` requests of this edge wait in line for the slot."""

    async def lined_up() -> bool:
        return slot.waiting == count

    await wait_until(lined_up, 10)


async def test_an_interactive_request_waits_for_a_window_instead_of_503():
    slot = _slot()
    job = Holder(slot, JOB, background=True)
    await asyncio.wait_for(job.held.wait(), 10)
    slot.refuse_if_busy()  # no refusal before the body: it will get the slot
    assert not slot.busy_here()
    interactive = Holder(slot, "asr tiny (job i)")
    await _in_line(slot, 1)
    assert not interactive.held.is_set()
    await job.let_go()  # the window ends: its turn
    await asyncio.wait_for(interactive.held.wait(), 10)
    assert not interactive.lease.background
    with pytest.raises(SlotBusy):  # an interactive holder still refuses the next at once
        slot.refuse_if_busy()
    await interactive.let_go()


async def test_a_job_takes_the_slot_only_when_nobody_waits():
    slot = _slot(wait_s=30)
    first = Holder(slot, "asr tiny (job 1)")
    await asyncio.wait_for(first.held.wait(), 10)
    second = Holder(slot, "asr tiny (job 2)")
    await _in_line(slot, 1)
    job = Holder(slot, JOB, background=True)
    await _polls()
    await first.let_go()
    await asyncio.wait_for(second.held.wait(), 10)  # the one in line, not the job
    await _polls()
    assert not job.held.is_set()
    await second.let_go()
    await asyncio.wait_for(job.held.wait(), 10)
    assert job.lease.background
    await job.let_go()


async def test_another_edge_waits_for_a_job_by_its_holder_name(redis_url):
    """Two edges on one Redis: the job's holder name tells the other edge to wait."""
    ours = _slot(RedisStore(redis_url, SLOT_KEY, 5))
    theirs = _slot(RedisStore(redis_url, SLOT_KEY, 5))
    try:
        job = Holder(ours, JOB, background=True)
        await asyncio.wait_for(job.held.wait(), 10)
        interactive = Holder(theirs, "asr tiny (job i)")
        await _polls()
        assert not interactive.held.is_set()
        await job.let_go()
        await asyncio.wait_for(interactive.held.wait(), 10)
        with pytest.raises(SlotBusy):  # a plain holder is refused at once, as ever
            async with ours.hold("asr tiny (job k)"):
                pass
        await interactive.let_go()
    finally:
        await ours.store.close()
        await theirs.store.close()

"""The GPU slot lease on a real Redis server (and its in-process twin)."""

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import redis.asyncio

from aistack_edge.errors import SlotBusy, SlotSettling, SlotStoreDown
from aistack_edge.slot import MemoryStore, RedisStore, Slot
from aistack_edge.slot.lease import Unobserved
from aistack_edge.slot.stores import STORE_KEPT
from aistack_testing.asr_protocol import wait_until
from aistack_testing.redis_server import RedisServer

KEY = "aistack:test-slot"
# A bound on waits for what must happen (a failure bound, never a pause): generous, so
# that a loaded machine is slow, not red.
PATIENCE_S = 30.0


async def until(condition: Callable[[], bool]) -> None:
    """Wait until `condition` holds (fails after PATIENCE_S)."""

    async def holds() -> bool:
        return condition()

    await wait_until(holds, PATIENCE_S)


def redis_slot(url: str, ttl_ms: int = 2000, wait_s: float = 0.0) -> Slot:
    return Slot(RedisStore(url, KEY, retry_after_s=5), ttl_ms, wait_s, retry_after_s=5)


@pytest.fixture(params=["redis", "memory"])
def store_factory(request, redis_url):
    """Stores that see the same lease: two Redis clients, or one in-process store."""
    if request.param == "memory":
        shared = MemoryStore()
        return lambda: shared
    return lambda: RedisStore(redis_url, KEY, retry_after_s=5)


async def test_two_edges_one_holder(redis_url):
    edge_a, edge_b = redis_slot(redis_url), redis_slot(redis_url)
    async with edge_a.hold("asr on edge A"):
        with pytest.raises(SlotBusy) as busy:
            async with edge_b.hold("tts on edge B"):
                pytest.fail("two edges held the slot at once")
        assert "asr on edge A" in busy.value.body.message
        assert busy.value.status == 503 and busy.value.retry_after_s == 5
        assert busy.value.body.kind == "network" and busy.value.body.provider == "aistack"
    async with edge_b.hold("tts on edge B"):
        assert await edge_a.holder() == "tts on edge B"
    assert await edge_a.holder() is None


async def test_the_holding_edge_refuses_without_asking_redis(redis_url):
    edge = redis_slot(redis_url)
    client = redis.asyncio.Redis.from_url(redis_url)

    async def commands() -> int:
        stats = await client.info("commandstats")
        return sum(stat["calls"] for stat in stats.values())

    try:
        async with edge.hold("asr"):
            before = await commands()
            for _ in range(20):
                with pytest.raises(SlotBusy) as busy:
                    async with edge.hold("tts"):
                        pytest.fail("the slot was held twice")
                assert "asr" in busy.value.body.message
            assert await commands() - before <= 2  # only commandstats itself (and a renewal)
        async with edge.hold("tts"):  # released: taken again through Redis
            assert await edge.holder() == "tts"
    finally:
        await client.aclose()


async def test_while_one_request_takes_the_slot_the_others_do_not_ask_redis(redis_url):
    """Twenty requests of one edge at once: the first asks Redis, the others are refused
    while it does (it gets the slot or someone else has it: busy either way)."""
    edge = redis_slot(redis_url)
    client = redis.asyncio.Redis.from_url(redis_url)
    refused: list[str] = []

    async def sets() -> int:
        return (await client.info("commandstats")).get("cmdstat_set", {}).get("calls", 0)

    async def attempt() -> str:
        try:
            async with edge.hold("contender"):
                await until(lambda: len(refused) == 19)  # held until every other was refused
                return "held"
        except SlotBusy as busy:
            refused.append(busy.body.message)
            return busy.body.message

    try:
        before = await sets()
        outcomes = await asyncio.gather(*(attempt() for _ in range(20)))
        assert outcomes.count("held") == 1
        assert all("busy" in outcome for outcome in outcomes if outcome != "held")
        assert await sets() - before == 2  # one take: the lease and its trace
    finally:
        await client.aclose()


class Refusals(Unobserved):
    """A slot observer that keeps the waits of the refusals it is told of."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def refused(self, waited_s: float) -> None:
        self.waits.append(waited_s)


async def test_a_route_can_be_refused_before_it_reads_its_body():
    """refuse_if_busy: busy at once while this edge holds the slot (the refusal told to
    the observer); nothing while the slot is free, nor where requests wait their turn."""
    refusals = Refusals()
    store = MemoryStore()
    slot = Slot(store, 2000, 0.0, 5, refusals)
    slot.refuse_if_busy()
    async with slot.hold("asr whisper"):
        with pytest.raises(SlotBusy) as busy:
            slot.refuse_if_busy()
        assert "asr whisper" in busy.value.body.message and busy.value.retry_after_s == 5
        assert refusals.waits == [0.0]
    slot.refuse_if_busy()
    waiting = Slot(store, 2000, 1.0, 5)
    async with waiting.hold("tts"):
        waiting.refuse_if_busy()


async def test_fifty_concurrent_acquirers_one_wins(store_factory):
    """One of fifty takes the slot, and it keeps it until all the others were refused:
    a busy answer that waited for the holder would never come (the wait fails)."""
    slots = [Slot(store_factory(), 30_000, 0.0, 5) for _ in range(50)]
    start = asyncio.Event()
    refused: list[str] = []

    async def attempt(slot: Slot) -> bool:
        await start.wait()
        try:
            async with slot.hold("contender"):
                await until(lambda: len(refused) == 49)
                return True
        except SlotBusy as busy:
            refused.append(busy.body.message)
            return False

    tasks = [asyncio.create_task(attempt(slot)) for slot in slots]
    start.set()
    outcomes = await asyncio.gather(*tasks)
    assert outcomes.count(True) == 1
    assert len(refused) == 49


class Renewals:
    """A lease store that counts the renewals it is asked for."""

    def __init__(self, store) -> None:
        self.store, self.count = store, 0

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    async def renew(self, token: str, ttl_ms: int) -> bool:
        self.count += 1
        return await self.store.renew(token, ttl_ms)


async def test_renewal_keeps_a_slot_past_its_ttl(store_factory):
    """Held past two TTLs (by the clock, from the acquisition) and through at least five
    renewals, the lease is still the holder's. Renewed every 0.5 s, and lost after 1 s
    without one: half a second of slack for a loaded machine's stalls."""
    ttl_ms = 1500
    store = Renewals(store_factory())
    holder, other = Slot(store, ttl_ms, 0.0, 5), Slot(store_factory(), ttl_ms, 0.0, 5)
    async with holder.hold("long job") as lease:
        past = lease.acquired_at + 2 * ttl_ms / 1000
        while time.monotonic() < past or store.count < 5:
            with pytest.raises(SlotBusy):
                async with other.hold("intruder"):
                    pass
            await asyncio.sleep(0.2)
        assert not lease.lost
    async with other.hold("next"):
        pass


async def test_release_never_deletes_someone_elses_lease(store_factory):
    first, second = store_factory(), store_factory()
    assert await first.try_set("a-token first", 100)

    async def expired() -> bool:  # without a renewal
        return await second.current() is None

    await wait_until(expired, PATIENCE_S)
    assert await second.try_set("b-token second", 10_000)
    assert not await first.release("a-token first")
    assert not await first.renew("a-token first", 10_000)
    assert await second.current() == "b-token second"
    assert await second.release("b-token second")


async def test_renewal_takes_back_a_lease_that_vanished(redis_url):
    """Redis restarted empty under a holder: its next renewal takes the key again, so a
    newcomer stays out (tests/test_faults.py does it with a real restart)."""
    holder, newcomer = redis_slot(redis_url, ttl_ms=1500), redis_slot(redis_url, ttl_ms=1500)
    client = redis.asyncio.Redis.from_url(redis_url)

    async def taken_back() -> bool:
        return await client.get(KEY) is not None

    try:
        async with holder.hold("long job"):
            await client.flushall()
            await wait_until(taken_back, PATIENCE_S)  # at its next renewal
            with pytest.raises(SlotBusy):
                async with newcomer.hold("newcomer"):
                    pass
            assert await holder.holder() == "long job"
    finally:
        await client.aclose()


async def test_released_on_error_and_on_cancellation(store_factory):
    slot = Slot(store_factory(), 2000, 0.0, 5)
    with pytest.raises(RuntimeError):
        async with slot.hold("failing"):
            raise RuntimeError("boom")
    assert await slot.holder() is None

    entered = asyncio.Event()

    async def hold_forever() -> None:
        async with slot.hold("cancelled"):
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(hold_forever())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await slot.holder() is None


async def test_waiting_is_first_come_first_served(store_factory):
    holder = Slot(store_factory(), 2000, 0.0, 5)
    line = Slot(store_factory(), 2000, PATIENCE_S, 5)
    served: list[int] = []

    async def wait_turn(n: int) -> None:
        async with line.hold(f"waiter {n}"):
            served.append(n)
            await asyncio.sleep(0.05)

    async with holder.hold("first"):
        waiters = []
        for n in range(5):
            waiters.append(asyncio.create_task(wait_turn(n)))
            await until(lambda: line.waiting == len(waiters))  # n is in line before n + 1
    await asyncio.gather(*waiters)
    assert served == [0, 1, 2, 3, 4]


async def test_waiting_gives_up_with_busy(store_factory):
    """A waiting request gives up, busy, once it waited its `wait_s` (not before), while
    the slot is still held: the holder keeps it until then (30 s TTL)."""
    holder = Slot(store_factory(), 30_000, 0.0, 5)
    line = Slot(store_factory(), 2000, 0.3, 5)
    async with holder.hold("first"):
        began = time.monotonic()
        with pytest.raises(SlotBusy) as busy:
            async with line.hold("patient"):
                pass
        assert time.monotonic() - began >= 0.3
        assert "first" in busy.value.body.message
    assert line.waiting == 0


async def test_the_line_is_bounded(store_factory):
    """Past `wait_max` waiting requests, one more is busy at once: a line with no bound
    held every waiting request's upload in memory, however many came."""
    holder = Slot(store_factory(), 2000, 0.0, 5)
    line = Slot(store_factory(), 2000, PATIENCE_S, 5, wait_max=2)

    async def wait_turn() -> None:
        async with line.hold("waiter"):
            pass

    async with holder.hold("first"):
        waiters = [asyncio.create_task(wait_turn()) for _ in range(2)]
        await until(lambda: line.waiting == 2)

        async def one_too_many() -> None:
            async with line.hold("one too many"):
                pytest.fail("the line took a third")

        refused = asyncio.create_task(one_too_many())
        # Busy while both waiters still wait: it did not join the line, nor wait its turn.
        await asyncio.wait([refused, *waiters], return_when=asyncio.FIRST_COMPLETED)
        assert refused.done() and line.waiting == 2
        with pytest.raises(SlotBusy) as busy:
            refused.result()
        assert "first" in busy.value.body.message and busy.value.retry_after_s == 5
    await asyncio.gather(*waiters)
    assert line.waiting == 0


_HOLD_AND_HANG = """
import asyncio, sys
from aistack_edge.slot import RedisStore, Slot

async def main():
    slot = Slot(RedisStore(sys.argv[1], sys.argv[2], 5), int(sys.argv[3]), 0.0, 5)
    async with slot.hold("doomed edge"):
        print("held", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


# How much later than one TTL after the kill the survivor may take the slot: the gap
# between the key's expiry and the survivor's next try. Measured: at most 0.03 s over
# 20 runs beside `stress --cpu 2` on a shared two-core machine (load average 10); 30
# times that here.
KILLED_MARGIN_S = 1.0


async def test_killed_holder_frees_the_slot_within_the_ttl(redis_url):
    ttl_s = 1.5
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_AND_HANG, redis_url, KEY, str(int(ttl_s * 1000))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        held = time.monotonic()
        slot = redis_slot(redis_url)
        while time.monotonic() < held + ttl_s * 1.5:  # renewed past its TTL while alive
            assert await slot.holder() == "doomed edge"
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()  # its last renewal came before: the key lasts < one TTL
        while True:
            try:
                async with slot.hold("survivor"):
                    break
            except SlotBusy:
                late = time.monotonic() - killed - ttl_s
                assert late < KILLED_MARGIN_S, "the TTL did not free the slot"
                await asyncio.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()


async def test_unreachable_redis_is_a_503_naming_redis():
    from aistack_testing.processes import free_port

    slot = redis_slot(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(SlotStoreDown) as down:
        async with slot.hold("anyone"):
            pass
    assert down.value.status == 503 and "Redis" in down.value.body.message


async def test_each_acquisition_gets_a_greater_fence(store_factory):
    """The fencing token only grows: a backend that has seen one refuses every older."""
    store = store_factory()
    fences = []
    for n in range(5):
        fences.append(await store.try_set(f"t{n} holder", 10_000))
        assert fences[-1] > 0
        assert await store.release(f"t{n} holder")
    assert fences == sorted(set(fences))
    assert await store.try_set("held", 10_000)
    assert await store.try_set("refused", 10_000) == 0  # held: no fence


async def test_the_fence_grows_across_a_restart_empty(tmp_path):
    """Redis restarted with nothing kept: the counter is gone, yet the next fencing token
    is greater than every one before (a counter that began at 1 again would be refused
    by every backend)."""
    server = RedisServer(tmp_path)
    server.start()
    store = RedisStore(server.url, KEY, retry_after_s=5)
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        before = await store.try_set("before holder", 10_000)
        await client.flushall()
        await client.set(STORE_KEPT, "1")  # no settling: the next acquire is at once
        assert await store.try_set("after holder", 10_000) > before
    finally:
        await client.aclose()
        await store.close()
        server.stop()


async def test_a_lease_key_deleted_while_held_is_not_taken_by_another(redis_url):
    """The lease key deleted under its holder (by hand, or evicted) while the holder's
    job may still be on its way to its backend, where no idle check sees it: nobody else
    takes the slot; the holder's next renewal takes the key back. The holder gone, the
    slot is free once its TTL has run out, as for any lost holder."""
    holder = RedisStore(redis_url, KEY, retry_after_s=5)
    newcomer = RedisStore(redis_url, KEY, retry_after_s=5)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await holder.try_set("holder", 1000) > 0
        await client.delete(KEY)
        with pytest.raises(SlotSettling):
            await newcomer.try_set("newcomer", 1000)
        assert await holder.renew("holder", 1000)
        assert await newcomer.try_set("newcomer", 1000) == 0
        await client.delete(KEY)  # and the holder renews no more
        deleted = time.perf_counter()
        while True:
            with contextlib.suppress(SlotSettling):
                if await newcomer.try_set("newcomer", 1000) > 0:
                    break
            assert time.perf_counter() - deleted < 1.0 + 0.5, "the trace outlived the TTL"
            await asyncio.sleep(0.02)
        assert await newcomer.release("newcomer")
        assert await holder.try_set("next", 1000) > 0  # a released lease leaves no trace
    finally:
        await client.aclose()
        await holder.close()
        await newcomer.close()

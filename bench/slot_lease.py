"""The GPU slot under load, with the lease on a real redis-server.

    python bench/slot_lease.py [--clients 1 10 100] [--leases 1000] [--waiters 10]

- Bursts: N clients ask an edge in front of tts-piper for speech at the same moment.
  One is served at a time, the others get 503 at once (goal: p99 of the 503s under
  10 ms, measured, not asserted), and no lease is left in Redis afterwards. Before
  that, 503s asked for one after another show the latency of one with no queue.
- The lease itself: acquire + release through the edge's Slot on Redis, against the
  same on the in-process store.
- Waiting (AISTACK_SLOT_WAIT_S > 0): while one long request holds the slot, clients
  arrive one after another; the order they are served in should be that order.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import redis
from harness import spread, started
from tts_relay import TEXT

from aistack_edge.slot import LeaseStore, MemoryStore, RedisStore, Slot
from aistack_testing.redis_server import RedisServer

KEY = "aistack:bench-slot"
SPACING_S = 0.05  # between waiters' arrivals
ONE_BY_ONE = 50  # busy answers asked for one after another


async def speak(
    session: aiohttp.ClientSession, edge: str, text: str, answering: asyncio.Event | None = None
) -> tuple[int, float, float]:
    """(status, seconds to the first byte, seconds to the end) of one speech request;
    `answering` is set at the first byte."""
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": "wav"}
    began = time.perf_counter()
    async with session.post(edge + "/v1/audio/speech", json=body) as response:
        first = None
        async for _ in response.content.iter_any():
            first = first or time.perf_counter() - began
            if answering is not None:
                answering.set()
        end = time.perf_counter() - began
    return response.status, first or end, end


def at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at any moment."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


async def burst(session: aiohttp.ClientSession, edge: str, clients: int) -> dict:
    """`clients` speech requests released together, on connections opened beforehand."""

    async def connect() -> None:
        async with session.get(edge + "/health") as response:
            await response.read()

    await asyncio.gather(*(connect() for _ in range(clients)))
    go = asyncio.Event()

    async def client() -> tuple[float, int, float, float]:
        await go.wait()
        began = time.perf_counter()
        status, first, end = await speak(session, edge, TEXT)
        return began, status, began + first, began + end

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(0.1)
    go.set()
    results = await asyncio.gather(*tasks)
    served = [(began, first, end) for began, status, first, end in results if status == 200]
    busy = [end - began for began, status, _, end in results if status == 503]
    statuses = sorted({status for _, status, _, _ in results} - {200, 503})
    return {
        "clients": clients,
        "served": len(served),
        "busy": len(busy),
        "other_statuses": statuses,
        "most_served_at_once": at_once([(first, end) for _, first, end in served]),
        "served_total_s": max((end - began for began, _, end in served), default=None),
        "busy_latency": spread(busy) if busy else None,
    }


async def one_burst(edge: str, clients: int) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await speak(session, edge, "Warming up.")
        return await burst(session, edge, clients)


async def one_by_one(edge: str) -> dict:
    """While a long request holds the slot, ONE_BY_ONE more one after another: their
    503s' latency with no queue in front of them."""
    async with aiohttp.ClientSession() as session:
        answering = asyncio.Event()
        holder = asyncio.create_task(speak(session, edge, TEXT, answering))
        await answering.wait()  # the slot is held while the answer streams
        busy = []
        for _ in range(ONE_BY_ONE):
            if holder.done():
                break
            status, _, end = await speak(session, edge, "Refused, hopefully.")
            if status == 503:
                busy.append(end)
        await holder
    return spread(busy)


def slot_free(url: str, within_s: float = 2.0) -> bool:
    """Whether the lease key is gone (waiting up to `within_s` for the last release)."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + within_s
    try:
        while client.exists(KEY):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
    finally:
        client.close()


async def hold_release(store: LeaseStore, leases: int) -> list[float]:
    """Seconds of each acquire + release of an otherwise idle slot."""
    slot = Slot(store, ttl_ms=10_000, wait_s=0.0, retry_after_s=5)
    seconds = []
    for _ in range(leases // 10):  # warm-up
        async with slot.hold("bench"):
            pass
    for _ in range(leases):
        began = time.perf_counter()
        async with slot.hold("bench"):
            pass
        seconds.append(time.perf_counter() - began)
    await store.close()
    return seconds


def lease_timing(url: str, leases: int) -> dict:
    redis_s = asyncio.run(hold_release(RedisStore(url, KEY + ":lease", 5), leases))
    memory_s = asyncio.run(hold_release(MemoryStore(), leases))
    figures = {"redis": spread(redis_s), "memory": spread(memory_s)}
    figures["p50_ratio"] = figures["redis"]["p50_ms"] / figures["memory"]["p50_ms"]
    return figures


async def arrival_order(edge: str, waiters: int) -> dict:
    """One long request, then `waiters` short ones SPACING_S apart, on a waiting edge."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await speak(session, edge, "Warming up.")
        calls = [asyncio.create_task(speak(session, edge, TEXT))]
        sent = []
        for n in range(waiters):
            await asyncio.sleep(SPACING_S)
            sent.append(time.perf_counter())
            calls.append(asyncio.create_task(speak(session, edge, f"Waiter number {n}.")))
        results = (await asyncio.gather(*calls))[1:]
    assert all(status == 200 for status, _, _ in results), results
    starts = [at + first for at, (_, first, _) in zip(sent, results, strict=True)]
    served = sorted(range(waiters), key=starts.__getitem__)
    return {
        "waiters": waiters,
        "spacing_s": SPACING_S,
        "served_order": served,
        "held": served == list(range(waiters)),
    }


def run(clients: Sequence[int], leases: int, waiters: int, work: Path) -> dict:
    """Bursts of each size, the lease's own time, and the order of waiters."""
    server = RedisServer(work)
    server.start()
    try:
        with started("aistack_tts_piper", {}, work) as tts:
            env = {
                "AISTACK_TTS_BACKENDS": tts.url,
                "AISTACK_REDIS_URL": server.url,
                "AISTACK_SLOT_KEY": KEY,
            }
            bursts = {}
            with started("aistack_edge", env, work) as edge:
                alone = asyncio.run(one_by_one(edge.url))
                for n in clients:
                    bursts[n] = asyncio.run(one_burst(edge.url, n))
                    bursts[n]["slot_free_after"] = slot_free(server.url)
            with started("aistack_edge", {**env, "AISTACK_SLOT_WAIT_S": "120"}, work) as edge:
                order = asyncio.run(arrival_order(edge.url, waiters))
        return {
            "busy_one_by_one": alone,
            "bursts": bursts,
            "lease": lease_timing(server.url, leases),
            "fifo": order,
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--leases", type=int, default=1000)
    parser.add_argument("--waiters", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-slot-"))
    print(json.dumps(run(args.clients, args.leases, args.waiters, work), indent=2))


if __name__ == "__main__":
    sys.exit(main())

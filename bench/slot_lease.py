"""The GPU slot under load, with the lease on a real redis-server.

    python bench/slot_lease.py [--clients 1 10 100] [--leases 1000] [--waiters 10]

- Bursts: N clients ask an edge in front of tts-piper for speech at the same moment.
  One is served at a time, the others get 503 at once (goal: p99 of the 503s under
  10 ms, measured, not asserted), and no lease is left in Redis afterwards. Before
  that, 503s asked for one after another show the latency of one with no queue. The
  clients are bare HTTP/1.1 connections in this process (the edge runs in its own):
  each answer is timed from its request's write to its arrival, with no client
  library's work in the figure.
- The floor: the same bursts against a bare aiohttp server that answers every request
  with the same 503 (busy_floor.py), while tts-piper synthesizes the same speech beside
  them, asked at the same moment: what aiohttp and the machine allow any edge written
  on them.
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
from harness import cpu_ns, spread, started
from http1 import Answer, Connection
from tts_relay import TEXT
from yarl import URL

from aistack_edge.slot import LeaseStore, MemoryStore, RedisStore, Slot
from aistack_testing.redis_server import RedisServer

KEY = "aistack:bench-slot"
SPEECH = "/v1/audio/speech"
SPACING_S = 0.05  # between waiters' arrivals
ONE_BY_ONE = 50  # busy answers asked for one after another


def speech_body(text: str) -> dict:
    return {"model": "piper", "voice": "alloy", "input": text, "response_format": "wav"}


async def speak(
    session: aiohttp.ClientSession, edge: str, text: str, answering: asyncio.Event | None = None
) -> tuple[int, float, float]:
    """(status, seconds to the first byte, seconds to the end) of one speech request;
    `answering` is set at the first byte."""
    began = time.perf_counter()
    async with session.post(edge + SPEECH, json=speech_body(text)) as response:
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


async def connections(edge: str, count: int) -> list[Connection]:
    """`count` connections to the edge, each used once (so the edge serves them already)."""
    url = URL(edge)
    opened = [await Connection.open(url.host or "", url.port or 80) for _ in range(count)]
    await asyncio.gather(*(c.send(c.encode("GET", "/health")) for c in opened))
    return opened


async def burst(edge: str, pid: int, clients: int, beside: str | None = None) -> dict:
    """`clients` speech requests written at once on connections opened beforehand; each
    answer timed from its own request's write to its arrival. The edge's event loop's
    CPU time over the 503s (from the first write to the last 503's arrival) shows what
    they cost it and how long it waited for a CPU meanwhile. With `beside` (a TTS
    backend), the same speech is asked of it just before, so that the synthesis runs
    beside the 503s as a served request's would."""
    opened = await connections(edge, clients)
    warm = json.dumps(speech_body("Warming up.")).encode()
    await opened[0].send(opened[0].encode("POST", SPEECH, warm, json=True))
    body = json.dumps(speech_body(TEXT)).encode()
    requests = [c.encode("POST", SPEECH, body, json=True) for c in opened]
    synthesis = None
    if beside is not None:
        (backend,) = await connections(beside, 1)
        synthesis = backend.send(backend.encode("POST", SPEECH, body, json=True))
    before, over_503s = cpu_ns(pid), None
    finished = 0

    def count(_: object) -> None:  # the loop reads /proc once: when all but one are in
        nonlocal finished, over_503s
        finished += 1
        if finished == clients - 1:
            over_503s = cpu_ns(pid)

    answers = [c.send(request) for c, request in zip(opened, requests, strict=True)]
    for answer in answers:
        answer.add_done_callback(count)
    results: list[Answer] = await asyncio.gather(*answers)
    if synthesis is not None:
        assert (await synthesis).status == 200
        backend.close()
    for c in opened:
        c.close()
    served = [r for r in results if r.status == 200]
    busy = [r.seconds for r in results if r.status == 503]
    cpu = None
    if before and over_503s and len(busy) >= clients - 1:
        cpu = {"running_ms": (over_503s[0] - before[0]) / 1e6}
        cpu["waiting_ms"] = (over_503s[1] - before[1]) / 1e6
    return {
        "clients": clients,
        "served": len(served),
        "busy": len(busy),
        "other_statuses": sorted({r.status for r in results} - {200, 503}),
        "most_served_at_once": at_once([(r.first or r.end, r.end) for r in served]),
        "served_total_s": max((r.seconds for r in served), default=None),
        "busy_latency": spread(busy) if busy else None,
        "edge_cpu_over_503s": cpu,
    }


async def one_by_one(edge: str) -> dict:
    """While a long request holds the slot, ONE_BY_ONE more one after another on one
    connection: their 503s' latency with no queue in front of them."""
    async with aiohttp.ClientSession() as session:
        answering = asyncio.Event()
        holder = asyncio.create_task(speak(session, edge, TEXT, answering))
        await answering.wait()  # the slot is held while the answer streams
        (connection,) = await connections(edge, 1)
        body = json.dumps(speech_body("Refused, hopefully.")).encode()
        busy = []
        for _ in range(ONE_BY_ONE):
            if holder.done():
                break
            answer = await connection.send(connection.encode("POST", SPEECH, body, json=True))
            if answer.status == 503:
                busy.append(answer.seconds)
        connection.close()
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
                    bursts[n] = asyncio.run(burst(edge.url, edge.proc.pid, n))
                    bursts[n]["slot_free_after"] = slot_free(server.url)
            with started("aistack_edge", {**env, "AISTACK_SLOT_WAIT_S": "120"}, work) as edge:
                order = asyncio.run(arrival_order(edge.url, waiters))
            floor = {}
            with started("busy_floor", {"PYTHONPATH": str(Path(__file__).parent)}, work) as bare:
                asyncio.run(burst(bare.url, bare.proc.pid, max(clients)))  # warm-up
                for n in clients:
                    floor[n] = asyncio.run(burst(bare.url, bare.proc.pid, n, beside=tts.url))
        return {
            "busy_one_by_one": alone,
            "bursts": bursts,
            "bare_aiohttp_bursts": floor,
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

"""The per-request cost of metrics and the access log: the same edge app with both on
vs. both off, in the same run.

    python bench/observability.py [--requests 2000] [--rounds 7] [--path /v1/models]

Two in-process edges (no backends, embedded slot) serve the same cheap route, so the
edge's own work is all there is to measure; rounds alternate between them after a
warm-up of each, and the medians of the per-request times are compared. The goal:
on over off at most 1.05.

The two edges run on their own event loop, in a thread of their own; the client on
another: a client on the servers' loop would hide part of what it measures (the loop's
time between requests would be the client's).

Which edge goes first alternates from one round to the next: the access log's thread
writes a round's last lines (those of its last 0.1 s) while the next round runs, so
with "on" always first, all of that work would be timed in "off" rounds.
"""

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from aistack_edge.app import create_app
from aistack_edge.config import EdgeSettings
from aistack_testing.processes import free_port

T = TypeVar("T")


async def serve(settings: EdgeSettings) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(settings), handler_cancellation=True, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def per_request_s(session: aiohttp.ClientSession, url: str, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        async with session.get(url) as response:
            await response.read()
    return (time.perf_counter() - start) / requests


async def measure(requests: int, rounds: int, path: str, urls: dict[str, str]) -> dict:
    """Per-request seconds of each edge, round by round."""
    times: dict[str, list[float]] = {"on": [], "off": []}
    async with aiohttp.ClientSession() as session:
        for url in urls.values():
            await per_request_s(session, url + path, requests // 4)
        for n in range(rounds):
            for name in ("on", "off") if n % 2 == 0 else ("off", "on"):
                times[name].append(await per_request_s(session, urls[name] + path, requests))
    return times


def main(requests: int, rounds: int, path: str) -> None:
    loop = asyncio.new_event_loop()
    servers = threading.Thread(target=loop.run_forever, name="edges", daemon=True)
    servers.start()

    def on_servers(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    with tempfile.TemporaryDirectory() as tmp:
        on = EdgeSettings(metrics=True, access_log_dir=Path(tmp) / "access")
        off = EdgeSettings(metrics=False, access_log_dir=None)
        (run_on, url_on), (run_off, url_off) = on_servers(serve(on)), on_servers(serve(off))
        times = asyncio.run(measure(requests, rounds, path, {"on": url_on, "off": url_off}))
        on_servers(run_on.cleanup())
        on_servers(run_off.cleanup())
    loop.call_soon_threadsafe(loop.stop)
    median = {name: statistics.median(values) for name, values in times.items()}
    for name in ("off", "on"):
        print(f"{name:>4}: {median[name] * 1e6:8.1f} µs per request (median of {rounds} rounds)")
    print(f"on / off: {median['on'] / median['off']:.3f} (goal ≤ 1.05)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--path", default="/v1/models")
    args = parser.parse_args()
    main(args.requests, args.rounds, args.path)

"""The per-request cost of metrics and the access log: the same edge app with both on
vs. both off, in the same run.

    python bench/observability.py [--requests 2000] [--rounds 7] [--path /v1/models]

Two in-process edges (no backends, embedded slot) serve the same cheap route, so the
edge's own work is all there is to measure; rounds alternate between them after a
warm-up of each, and the medians of the per-request times are compared. The goal:
on over off at most 1.05.

Which edge goes first alternates from one round to the next: the access log's thread
writes a round's last lines (those of its last 0.1 s) while the next round runs, so
with "on" always first, all of that work would be timed in "off" rounds.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from aistack_edge.app import create_app
from aistack_edge.config import EdgeSettings
from aistack_testing.processes import free_port


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


async def main(requests: int, rounds: int, path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        on = EdgeSettings(metrics=True, access_log_dir=Path(tmp) / "access")
        off = EdgeSettings(metrics=False, access_log_dir=None)
        (run_on, url_on), (run_off, url_off) = await serve(on), await serve(off)
        times: dict[str, list[float]] = {"on": [], "off": []}
        async with aiohttp.ClientSession() as session:
            for url in (url_on, url_off):
                await per_request_s(session, url + path, requests // 4)
            for n in range(rounds):
                for name in ("on", "off") if n % 2 == 0 else ("off", "on"):
                    url = url_on if name == "on" else url_off
                    times[name].append(await per_request_s(session, url + path, requests))
        await run_on.cleanup()
        await run_off.cleanup()
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
    asyncio.run(main(args.requests, args.rounds, args.path))

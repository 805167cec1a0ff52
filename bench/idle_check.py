"""What the fence's idle check (idle before start) adds to a 5 s transcription.

    python bench/idle_check.py [--runs 30] [--checks 300]

- The check alone: the edge's IdleCheck reading an idle asr-whisper (one `GET
  /status`), timed in this process (goal: p50 under 2 ms).
- Through the edge: 5 s transcriptions of the same clip, alternately through an edge
  with the check and one without (AISTACK_IDLE_CHECK=false), both in front of the same
  asr-whisper with its model loaded: the p50 of each, and their ratio (the floor is
  the edge without the check).
"""

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from harness import sentence_wav, spread, started

from aistack_edge.slot.idle import IdleCheck


async def checks(url: str, count: int) -> list[float]:
    """Seconds of each idle check of the backend at `url` (it is idle)."""
    async with aiohttp.ClientSession() as session:
        idle = IdleCheck(session, [url], None, timeout_s=5.0)
        for _ in range(count // 10):  # warm-up: the first learns how the backend reports
            await idle.wait_idle(1.0, 5)
        seconds = []
        for _ in range(count):
            began = time.perf_counter()
            await idle.wait_idle(1.0, 5)
            seconds.append(time.perf_counter() - began)
    return seconds


async def transcribe(session: aiohttp.ClientSession, edge: str, audio: bytes) -> float:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename="clip.wav")
    began = time.perf_counter()
    async with session.post(edge + "/v1/audio/transcriptions", data=form) as response:
        await response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - began


async def through_edges(with_check: str, without: str, audio: bytes, runs: int) -> dict:
    """Alternate the two edges so that the machine's load falls on both alike."""
    timed: dict[str, list[float]] = {"with": [], "without": []}
    async with aiohttp.ClientSession() as session:
        for edge in (with_check, without):  # warm-up: the model loaded, connections open
            await transcribe(session, edge, audio)
        for _ in range(runs):
            timed["with"].append(await transcribe(session, with_check, audio))
            timed["without"].append(await transcribe(session, without, audio))
    figures = {name: spread(seconds) for name, seconds in timed.items()}
    figures["p50_ratio"] = figures["with"]["p50_ms"] / figures["without"]["p50_ms"]
    figures["p50_added_ms"] = figures["with"]["p50_ms"] - figures["without"]["p50_ms"]
    return figures


def run(runs: int, count: int, work: Path) -> dict:
    audio = sentence_wav(work).read_bytes()
    with contextlib.ExitStack() as stack:
        whisper = stack.enter_context(started("aistack_asr_whisper", {}, work))
        env = {"AISTACK_ASR_BACKENDS": whisper.url, "AISTACK_REDIS_URL": ""}
        with_check = stack.enter_context(started("aistack_edge", env, work))
        off = env | {"AISTACK_IDLE_CHECK": "false"}
        without = stack.enter_context(started("aistack_edge", off, work))
        check = spread(asyncio.run(checks(whisper.url, count)))
        edges = asyncio.run(through_edges(with_check.url, without.url, audio, runs))
    return {"idle_check": check, "goal_p50_ms": 2.0, "transcription_5s": edges}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--checks", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        figures = run(args.runs, args.checks, Path(work))
    json.dump(figures, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

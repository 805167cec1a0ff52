"""The edge's own cost: latency of /v1/models and of a short transcription through the
edge vs. straight to the backend (asr-whisper's /info and /transcribe), in the same run.

    python bench/edge_overhead.py [--requests 500] [--transcriptions 50] [--clients 1 10 100]

It starts asr-whisper and an edge in front of it (embedded slot). One client sends the
transcriptions, alternating between the two paths in rounds; /v1/models and /info are
asked the same way by 1, 10 and 100 concurrent clients. Each figure: p50 and p99 in
milliseconds. The edge runs with its model cache off (`AISTACK_MODELS_CACHE_S=0`), so that
each /v1/models asks the backend, as /info is asked straight: like with like.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp
from harness import sentence_wav, spread, started

from aistack_contract.transcription import TranscribeOptions

MODEL_ID = "whisper-tiny.en"
ROUNDS = 5

Probe = Callable[[aiohttp.ClientSession], Awaitable[None]]


def get(url: str) -> Probe:
    async def probe(session: aiohttp.ClientSession) -> None:
        async with session.get(url) as response:
            response.raise_for_status()
            await response.read()

    return probe


def post_form(url: str, fields: dict[str, str], wav: Path) -> Probe:
    audio = wav.read_bytes()

    async def probe(session: aiohttp.ClientSession) -> None:
        form = aiohttp.FormData(fields)
        form.add_field("file", audio, filename=wav.name, content_type="audio/wav")
        async with session.post(url, data=form) as response:
            response.raise_for_status()
            await response.read()

    return probe


async def latencies(
    session: aiohttp.ClientSession, probe: Probe, requests: int, clients: int
) -> list[float]:
    """Seconds of each of `requests` calls of `probe`, made by `clients` at once."""
    seconds: list[float] = []
    todo = iter(range(requests))

    async def client() -> None:
        for _ in todo:
            began = time.perf_counter()
            await probe(session)
            seconds.append(time.perf_counter() - began)

    await asyncio.gather(*(client() for _ in range(clients)))
    return seconds


async def compare(
    session: aiohttp.ClientSession, probes: dict[str, Probe], requests: int, clients: int
) -> dict:
    """Both paths in alternating rounds after a warm-up; p50/p99 of each, and ratios."""
    seconds: dict[str, list[float]] = {name: [] for name in probes}
    per_round = max(-(-requests // ROUNDS), clients)
    for probe in probes.values():
        await latencies(session, probe, clients, clients)
    for _ in range(ROUNDS):
        for name, probe in probes.items():
            seconds[name] += await latencies(session, probe, per_round, clients)
    figures: dict = {name: spread(values) for name, values in seconds.items()}
    edge, direct = figures["edge"], figures["backend"]
    figures["p50_ratio"] = edge["p50_ms"] / direct["p50_ms"]
    figures["p99_ratio"] = edge["p99_ms"] / direct["p99_ms"]
    return figures


async def measure(
    edge: str, backend: str, wav: Path, requests: int, transcriptions: int, clients: Sequence[int]
) -> dict:
    models = {"edge": get(edge + "/v1/models"), "backend": get(backend + "/info")}
    options = TranscribeOptions(model=MODEL_ID).model_dump_json()
    transcribe = {
        "edge": post_form(
            edge + "/v1/audio/transcriptions",
            {"model": MODEL_ID, "response_format": "json"},
            wav,
        ),
        "backend": post_form(backend + "/transcribe", {"options": options}, wav),
    }
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        return {
            "transcription": await compare(session, transcribe, transcriptions, 1),
            "models_by_clients": {n: await compare(session, models, requests, n) for n in clients},
        }


def run(requests: int, transcriptions: int, clients: Sequence[int], work: Path) -> dict:
    """Latency figures of both paths: transcriptions, then /v1/models by client count."""
    wav = sentence_wav(work)
    with (
        started("aistack_asr_whisper", {}, work) as backend,
        started(
            "aistack_edge",
            {"AISTACK_ASR_BACKENDS": backend.url, "AISTACK_MODELS_CACHE_S": "0"},
            work,
        ) as edge,
    ):
        return asyncio.run(measure(edge.url, backend.url, wav, requests, transcriptions, clients))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="per path, of /v1/models")
    parser.add_argument("--transcriptions", type=int, default=50, help="per path")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    figures = run(args.requests, args.transcriptions, args.clients, work)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())

"""Time to first byte and total time of a streamed /v1/audio/speech, relayed through
the edge vs. straight to the TTS backend, in the same run.

    python bench/tts_relay.py [--upstream URL] [--model piper] [--format wav] [--runs 7]

With no --upstream it starts tts-piper (aistack_tts_piper) on a free port; it always
starts an edge in front of the backend (embedded slot). Runs alternate between the two
paths, after a warm-up of each. The goal: edge over backend at most 1.05 for both.
"""

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from aistack_testing.processes import Service, free_port, start_service

TEXT = " ".join(
    f"Paragraph sentence {n} tells the listener a little more about the harbour at dawn."
    for n in range(1, 7)
)


@dataclass
class Run:
    first_byte_s: float
    total_s: float
    size: int


def measure(http: httpx.Client, url: str, model: str, fmt: str, text: str) -> Run:
    body = {"model": model, "voice": "alloy", "input": text, "response_format": fmt}
    start = time.perf_counter()
    first, size = None, 0
    with http.stream("POST", url + "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            size += len(chunk)
    assert first is not None, "no audio came back"
    return Run(first, time.perf_counter() - start, size)


def start(module: str, env: dict[str, str], logdir: Path) -> Service:
    port = free_port()
    log = logdir / f"{module}.log"
    return start_service(["-m", module, "--port", str(port)], port, log, env, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--upstream", help="base URL of a TTS backend (OpenAI /v1/audio/speech)")
    parser.add_argument("--model", default="piper")
    parser.add_argument(
        "--format", default="wav", choices=["wav", "mp3", "opus", "aac", "flac", "pcm"]
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="tts-relay-"))
    started: list[Service] = []
    try:
        if args.upstream is None:
            started.append(start("aistack_tts_piper", {}, logdir))
            args.upstream = started[-1].url
        started.append(start("aistack_edge", {"AISTACK_TTS_BACKENDS": args.upstream}, logdir))
        paths = {"backend": args.upstream, "edge": started[-1].url}
        runs: dict[str, list[Run]] = {name: [] for name in paths}
        with httpx.Client(timeout=300) as http:
            for url in paths.values():
                measure(http, url, args.model, args.format, "Warming up.")
            for _ in range(args.runs):
                for name, url in paths.items():
                    runs[name].append(measure(http, url, args.model, args.format, TEXT))
        stats = {}
        for name, results in runs.items():
            firsts = [r.first_byte_s for r in results]
            totals = [r.total_s for r in results]
            stats[name] = (statistics.median(firsts), statistics.median(totals))
            print(
                f"{name:8} {paths[name]}: first byte {stats[name][0] * 1000:.1f} ms "
                f"(min {min(firsts) * 1000:.1f}), total {stats[name][1] * 1000:.1f} ms "
                f"(min {min(totals) * 1000:.1f}); {results[0].size} bytes of {args.format}, "
                f"median of {args.runs}"
            )
        (up_first, up_total), (edge_first, edge_total) = stats["backend"], stats["edge"]
        print(
            f"edge / backend (medians): first byte x{edge_first / up_first:.3f}, "
            f"total x{edge_total / up_total:.3f} (goal <= 1.05)"
        )
    finally:
        for service in reversed(started):
            service.stop()


if __name__ == "__main__":
    sys.exit(main())

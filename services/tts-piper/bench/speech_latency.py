"""Time to first byte and total time of POST /v1/audio/speech, for one or more base URLs.

    python services/tts-piper/bench/speech_latency.py [--url URL ...] [--format pcm] [--runs 5]

With no --url it starts tts-piper on a free port and measures that. With two URLs (say the
edge, then tts-piper itself) it also prints each one's ratio to the last URL's medians:
the issue's goal for the edge is a ratio of at most 1.05.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from aistack_testing.processes import free_port, start_service

TEXT = " ".join(
    f"Sentence number {n} of the benchmark says a few ordinary words about the weather."
    for n in range(1, 13)
)


def measure(url: str, fmt: str, text: str) -> tuple[float, float, int]:
    """(seconds to the first audio byte, seconds to the last, bytes) of one request."""
    body = {"model": "piper", "voice": "alloy", "input": text, "response_format": fmt}
    start = time.perf_counter()
    first, size = None, 0
    with httpx.stream("POST", url + "/v1/audio/speech", json=body, timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            if chunk and first is None:
                first = time.perf_counter() - start
            size += len(chunk)
    return first or 0.0, time.perf_counter() - start, size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", action="append", help="base URL (repeatable)")
    parser.add_argument("--format", default="pcm")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    service = None
    if not args.url:
        port = free_port()
        log = Path(tempfile.mkdtemp()) / "tts-piper.log"
        service = start_service(["-m", "aistack_tts_piper", "--port", str(port)], port, log)
        args.url = [service.url]
    try:
        medians = {}
        for url in args.url:
            measure(url, args.format, "Warm up.")
            runs = [measure(url, args.format, TEXT) for _ in range(args.runs)]
            ttfb = statistics.median(run[0] for run in runs)
            total = statistics.median(run[1] for run in runs)
            medians[url] = (ttfb, total)
            print(
                f"{url}: first byte {ttfb * 1000:.0f} ms, total {total:.2f} s, {runs[0][2]} bytes"
            )
        last_ttfb, last_total = medians[args.url[-1]]
        for url, (ttfb, total) in list(medians.items())[:-1]:
            print(f"{url} vs {args.url[-1]}: first byte x{ttfb / last_ttfb:.3f}, "
                  f"total x{total / last_total:.3f}")  # fmt: skip
    finally:
        if service is not None:
            service.stop()


if __name__ == "__main__":
    sys.exit(main())

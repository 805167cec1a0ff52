"""Time to first byte, total time and real-time factor of a streamed /v1/audio/speech,
relayed through the edge vs. straight to the TTS backend, in the same run.

    python bench/tts_relay.py [--upstream URL] [--model piper] [--format wav] [--runs 7]

With no --upstream it starts tts-piper (aistack_tts_piper) on a free port; it always
starts an edge in front of the backend (embedded slot). Runs alternate between the two
paths, after a warm-up of each. The goal: edge over backend at most 1.05 for both.
The real-time factor (total time over the audio's length) needs --format wav.
"""

import argparse
import contextlib
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import started

TEXT = " ".join(
    f"Paragraph sentence {n} tells the listener a little more about the harbour at dawn."
    for n in range(1, 7)
)


@dataclass
class Run:
    first_byte_s: float
    total_s: float
    size: int
    audio_s: float | None


def wav_seconds(body: bytes) -> float | None:
    """The length of a (streamed) WAV from its fmt chunk and the bytes after `data`."""
    fmt, data = body.find(b"fmt "), body.find(b"data")
    if not body.startswith(b"RIFF") or fmt < 0 or data < 0:
        return None
    _, channels, rate, _, block_align = struct.unpack_from("<HHIIH", body, fmt + 8)
    return (len(body) - data - 8) / block_align / rate if channels else None


def measure(http: httpx.Client, url: str, model: str, fmt: str, text: str) -> Run:
    body = {"model": model, "voice": "alloy", "input": text, "response_format": fmt}
    start = time.perf_counter()
    first, audio = None, bytearray()
    with http.stream("POST", url + "/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            audio += chunk
    assert first is not None, "no audio came back"
    seconds = wav_seconds(bytes(audio)) if fmt == "wav" else None
    return Run(first, time.perf_counter() - start, len(audio), seconds)


def summary(runs: list[Run]) -> dict:
    """Medians over the runs (and the bytes and audio length of the first)."""
    total = statistics.median(r.total_s for r in runs)
    audio_s = runs[0].audio_s
    return {
        "first_byte_s": statistics.median(r.first_byte_s for r in runs),
        "min_first_byte_s": min(r.first_byte_s for r in runs),
        "total_s": total,
        "min_total_s": min(r.total_s for r in runs),
        "bytes": runs[0].size,
        "audio_s": audio_s,
        "rtf": total / audio_s if audio_s else None,
    }


def run(upstream: str | None, model: str, fmt: str, runs: int, logdir: Path) -> dict:
    """Medians through the backend and through the edge, and edge / backend ratios."""
    with contextlib.ExitStack() as stack:
        if upstream is None:
            upstream = stack.enter_context(started("aistack_tts_piper", {}, logdir)).url
        edge = stack.enter_context(
            started("aistack_edge", {"AISTACK_TTS_BACKENDS": upstream}, logdir)
        )
        paths = {"backend": upstream, "edge": edge.url}
        measured: dict[str, list[Run]] = {name: [] for name in paths}
        with httpx.Client(timeout=300) as http:
            for url in paths.values():
                measure(http, url, model, fmt, "Warming up.")
            for _ in range(runs):
                for name, url in paths.items():
                    measured[name].append(measure(http, url, model, fmt, TEXT))
    figures = {name: {"url": paths[name], **summary(rs)} for name, rs in measured.items()}
    backend, edge = figures["backend"], figures["edge"]
    figures["runs"] = runs
    figures["format"] = fmt
    figures["first_byte_ratio"] = edge["first_byte_s"] / backend["first_byte_s"]
    figures["total_ratio"] = edge["total_s"] / backend["total_s"]
    return figures


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
    figures = run(args.upstream, args.model, args.format, args.runs, logdir)
    for name in ("backend", "edge"):
        f = figures[name]
        rtf = f", RTF {f['rtf']:.3f}" if f["rtf"] is not None else ""
        print(
            f"{name:8} {f['url']}: first byte {f['first_byte_s'] * 1000:.1f} ms "
            f"(min {f['min_first_byte_s'] * 1000:.1f}), total {f['total_s'] * 1000:.1f} ms "
            f"(min {f['min_total_s'] * 1000:.1f}){rtf}; {f['bytes']} bytes of {args.format}, "
            f"median of {args.runs}"
        )
    print(
        f"edge / backend (medians): first byte x{figures['first_byte_ratio']:.3f}, "
        f"total x{figures['total_ratio']:.3f} (goal <= 1.05)"
    )


if __name__ == "__main__":
    sys.exit(main())

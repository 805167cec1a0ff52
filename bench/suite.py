"""The benchmark suite: every part in one run, one table, one JSON file.

    python bench/suite.py [--quick] [--parts overhead asr tts slot idle llm realtime] [--out DIR]

Each part starts its own services, measures the edge path and its baseline in the
same run, alternating, and reports medians (latencies as p50 and p99). `--quick`
uses short clips and few runs: a smoke check, not figures to quote. The table goes
to stdout, everything measured to DIR/<date>-<time>.json (default: bench/results).
"""

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import asr_edge
import edge_overhead
import idle_check
import llm_relay
import realtime
import slot_lease
import tts_relay
from report import Row, machine, render, results_path, write_json


@dataclass(frozen=True)
class Plan:
    """How much of each part to run."""

    requests: int  # /v1/models per path and number of clients
    transcriptions: int  # short transcriptions per path
    clients: tuple[int, ...]
    asr_runs: dict[float, int]  # clip seconds -> runs
    asr_long: tuple[float, ...]  # clip seconds, one run each through the edge alone
    tts_runs: int
    leases: int
    waiters: int
    llm_runs: int
    llm_tokens: int
    realtime_runs: int  # 3 s utterances per path
    idle_runs: int  # 5 s transcriptions per edge, with and without the idle check
    idle_checks: int  # idle checks timed alone


FULL = Plan(
    requests=500,
    transcriptions=40,
    clients=(1, 10, 100),
    asr_runs={60: 3, 300: 3, 1200: 1},
    asr_long=(60, 1800, 7200),
    tts_runs=7,
    leases=1000,
    waiters=10,
    llm_runs=5,
    llm_tokens=256,
    realtime_runs=10,
    idle_runs=30,
    idle_checks=300,
)
QUICK = Plan(
    requests=50,
    transcriptions=3,
    clients=(1, 10, 100),
    asr_runs={10: 1, 30: 1},
    asr_long=(60,),
    tts_runs=2,
    leases=100,
    waiters=4,
    llm_runs=1,
    llm_tokens=32,
    realtime_runs=2,
    idle_runs=3,
    idle_checks=30,
)


def duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def clients(n: int) -> str:
    return f"{n} client" if n == 1 else f"{n} clients"


def overhead_rows(f: dict) -> list[Row]:
    rows = []
    cases = [(f"/v1/models, {clients(n)}", by) for n, by in f["models_by_clients"].items()]
    cases.append(("5 s transcription", f["transcription"]))
    for name, figures in cases:
        for q in ("p50", "p99"):
            key = f"{q}_ms"
            rows.append(
                Row(f"{name} {q}", "ms", figures["edge"][key], figures["backend"][key], "backend")
            )
    return rows


def asr_rows(f: dict) -> list[Row]:
    rows = []
    for r in f["asr"]:
        length = f"{duration(r['audio_s'])} (median of {r['runs']})"
        rows.append(Row(f"RTF {length}", "", r["rtf_edge"], r["rtf_in_process"], "in-process"))
        rows.append(
            Row(
                f"first text {length}",
                "s",
                r["first_delta_edge_s"],
                r["first_segment_in_process_s"],
                "in-process",
            )
        )
        after = duration(r["audio_s"])
        rows.append(Row(f"peak memory after {after}: edge", "MiB", r["edge_peak_mib"]))
        rows.append(Row(f"peak memory after {after}: backend", "MiB", r["backend_peak_mib"]))
    rows.append(Row("peak memory: in-process baseline", "MiB", f["memory"]["bench_process_mib"]))
    longs = f.get("long", [])
    for r in longs:
        length, shortest = duration(r["audio_s"]), longs[0]
        rows.append(Row(f"long {length}: first text", "s", r["first_delta_s"]))
        rows.append(
            Row(
                f"long {length}: RTF",
                "",
                r["rtf"],
                shortest["rtf"],
                f"RTF at {duration(shortest['audio_s'])}",
            )
        )
        rows.append(Row(f"long {length}: backend memory growth", "MiB", r["backend_growth_mib"]))
        rows.append(Row(f"long {length}: edge memory growth", "MiB", r["edge_growth_mib"]))
    return rows


def tts_rows(f: dict) -> list[Row]:
    vs = "tts-piper"
    edge, backend = f["edge"], f["backend"]
    return [
        Row(
            "time to first byte",
            "ms",
            1e3 * edge["first_byte_s"],
            1e3 * backend["first_byte_s"],
            vs,
        ),
        Row("total", "s", edge["total_s"], backend["total_s"], vs),
        Row(f"RTF ({backend['audio_s']:.1f} s of speech)", "", edge["rtf"], backend["rtf"], vs),
    ]


def slot_rows(f: dict) -> list[Row]:
    alone = f["busy_one_by_one"]
    rows = [
        Row(f"503 one after another p50 (of {alone['n']})", "ms", alone["p50_ms"]),
        Row(f"503 one after another p99 (of {alone['n']})", "ms", alone["p99_ms"]),
    ]
    for n, b in f["bursts"].items():
        who, bare = clients(n), f["bare_aiohttp_bursts"][n]["busy_latency"]
        rows.append(Row(f"{who}: served / 503", "", f"{b['served']} / {b['busy']}"))
        if b["busy_latency"]:
            for q in ("p50", "p99"):
                edge_ms, bare_ms = b["busy_latency"][f"{q}_ms"], bare[f"{q}_ms"]
                rows.append(Row(f"{who}: 503 {q}", "ms", edge_ms, bare_ms, "bare aiohttp"))
        if cpu := b["edge_cpu_over_503s"]:
            rows.append(Row(f"{who}: edge on a CPU over the 503s", "ms", cpu["running_ms"]))
            rows.append(Row(f"{who}: edge waiting for a CPU then", "ms", cpu["waiting_ms"]))
        rows.append(Row(f"{who}: served request", "s", b["served_total_s"]))
        rows.append(Row(f"{who}: most served at once", "", b["most_served_at_once"]))
        rows.append(Row(f"{who}: slot free after", "", b["slot_free_after"]))
    for q in ("p50", "p99"):
        redis, memory = f["lease"]["redis"][f"{q}_ms"], f["lease"]["memory"][f"{q}_ms"]
        rows.append(Row(f"lease acquire + release {q}", "ms", redis, memory, "in-process"))
    fifo = f["fifo"]
    rows.append(Row(f"wait enabled: {fifo['waiters']} served in arrival order", "", fifo["held"]))
    return rows


def idle_rows(f: dict) -> list[Row]:
    check, edges, vs = f["idle_check"], f["transcription_5s"], "without the check"
    rows = [Row(f"idle check alone {q}", "ms", check[f"{q}_ms"]) for q in ("p50", "p99")]
    for q in ("p50", "p99"):
        with_check, without = edges["with"][f"{q}_ms"], edges["without"][f"{q}_ms"]
        rows.append(Row(f"5 s transcription {q}", "ms", with_check, without, vs))
    return rows


def llm_rows(f: dict) -> list[Row]:
    vs = "llama.cpp"
    edge, up = f["edge"], f["upstream"]
    return [
        Row(
            "time to first token", "ms", 1e3 * edge["first_token_s"], 1e3 * up["first_token_s"], vs
        ),
        Row(f"tokens/s ({up['tokens']} tokens)", "", edge["tokens_per_s"], up["tokens_per_s"], vs),
    ]


def realtime_rows(f: dict) -> list[Row]:
    floor, vs = f["floor"], "POST /v1/audio/transcriptions"
    rows = []
    for path, name in [
        ("commit", "commit → completed"),
        ("server_vad", "speech_stopped → completed (server VAD)"),
        ("four", "speech_stopped → completed, 4 sessions at once"),
    ]:
        for q in ("p50", "p95"):
            rows.append(Row(f"{name} {q}", "s", f[path][f"{q}_s"], floor[f"{q}_s"], vs))
    return rows


def growth(figure: str, unit: str, sizes: dict[str, float], vs: str) -> list[Row]:
    """One row per size: its value against the first size's (ratio = how much it grew)."""
    first = next(iter(sizes.values()))
    return [Row(f"{figure}, {size}", unit, value, first, vs) for size, value in sizes.items()]


def scaling_rows(parts: dict[str, dict]) -> list[Row]:
    """How figures grow with audio length and with concurrent clients."""
    rows = []
    if "asr" in parts:
        by_length = {duration(r["audio_s"]): r for r in parts["asr"]["asr"]}
        vs = next(iter(by_length))
        for key, figure, unit in [
            ("rtf_edge", "RTF through the edge", ""),
            ("rtf_in_process", "RTF in-process", ""),
            ("first_delta_edge_s", "first text through the edge", "s"),
            ("backend_peak_mib", "backend peak memory", "MiB"),
        ]:
            rows += growth(figure, unit, {k: r[key] for k, r in by_length.items()}, vs)
    if "overhead" in parts:
        by_clients = parts["overhead"]["models_by_clients"]
        for q in ("p50", "p99"):
            sizes = {clients(int(n)): f["edge"][f"{q}_ms"] for n, f in by_clients.items()}
            rows += growth(f"/v1/models {q} through the edge", "ms", sizes, "1 client")
    if "slot" in parts:
        slot = parts["slot"]
        sizes = {"one after another": slot["busy_one_by_one"]["p99_ms"]}
        for n, burst in slot["bursts"].items():
            if burst["busy_latency"]:
                sizes[clients(int(n))] = burst["busy_latency"]["p99_ms"]
        rows += growth("503 p99", "ms", sizes, "one by one")
    return rows


@dataclass(frozen=True)
class Part:
    title: str
    measure: Callable[[Plan, Path], dict]
    rows: Callable[[dict], list[Row]]


PARTS = {
    "overhead": Part(
        "edge overhead (vs. asr-whisper directly)",
        lambda p, w: edge_overhead.run(p.requests, p.transcriptions, p.clients, w),
        overhead_rows,
    ),
    "asr": Part(
        "ASR: edge vs. faster-whisper in-process",
        lambda p, w: asr_edge.run(p.asr_runs, w, p.asr_long),
        asr_rows,
    ),
    "tts": Part(
        "TTS: edge vs. tts-piper directly",
        lambda p, w: tts_relay.run(None, "piper", "wav", p.tts_runs, w),
        tts_rows,
    ),
    "slot": Part(
        "the GPU slot (lease on redis-server)",
        lambda p, w: slot_lease.run(p.clients, p.leases, p.waiters, w),
        slot_rows,
    ),
    "idle": Part(
        "the fence's idle check (a 5 s transcription, with vs. without)",
        lambda p, w: idle_check.run(p.idle_runs, p.idle_checks, w),
        idle_rows,
    ),
    "llm": Part(
        "LLM: edge vs. llama.cpp's server directly",
        lambda p, w: llm_relay.run(None, "smollm2", p.llm_runs, p.llm_tokens, w),
        llm_rows,
    ),
    "realtime": Part(
        f"live transcription: a {realtime.UTTERANCE_S:g} s utterance vs. the same file posted",
        lambda p, w: realtime.run(p.realtime_runs, w),
        realtime_rows,
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short clips, few runs")
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    report: dict = {
        "mode": "quick" if args.quick else "full",
        "plan": asdict(plan),
        "machine": machine(),
        "load_before": os.getloadavg(),
        "parts": {},
    }
    rows: dict[str, list[Row]] = {}
    path = results_path(args.out)
    began = time.monotonic()
    failed = False
    for name in args.parts:
        part = PARTS[name]
        print(f"== {part.title}", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as work:
                figures = part.measure(plan, Path(work))
        except Exception:
            failed = True
            traceback.print_exc()
            report["parts"][name] = {"error": traceback.format_exc()}
            continue
        figures["wall_s"] = time.monotonic() - started
        report["parts"][name] = figures
        rows[part.title] = part.rows(figures)
        write_json(path, report, rows)  # so far: a run cut short keeps its finished parts
    measured = {name: f for name, f in report["parts"].items() if "error" not in f}
    if scaling := scaling_rows(measured):
        rows["scaling (ratio: against the smallest size)"] = scaling
    report["wall_s"] = time.monotonic() - began
    report["load_after"] = os.getloadavg()
    write_json(path, report, rows)
    print(render(rows, report))
    print(f"figures: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

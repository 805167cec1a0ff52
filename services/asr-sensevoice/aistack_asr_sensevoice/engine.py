"""How the service calls FunASR; a benchmark can call it the same way in-process:

pair = load(settings)
for start, end, samples in speech_spans(pair, audio.blocks(VAD_WINDOW_S)):  # as found
    raw = recognize(pair, samples, "auto", True, True, cancel)

FunASR (and torch) are imported on first load, so the service answers /health at once.
"""

import gc
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aistack_asr.audio import SAMPLE_RATE
from aistack_asr.stoppable import stoppable
from aistack_asr_sensevoice.settings import SenseVoiceSettings

REQUIRED_FILES = ("config.yaml", "model.pt")
VAD_WINDOW_S = 60.0
"""Audio the VAD takes at a time (its own default chunk): a long file's first segment comes
after one window of VAD, not after all of it."""
_LOOKBACK = 5 * SAMPLE_RATE


@dataclass
class SenseVoicePair:
    """SenseVoice Small and its VAD: loaded together, used together, dropped together."""

    asr: Any  # funasr.AutoModel
    vad: Any  # funasr.AutoModel
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    """AutoModel keeps per-call settings on itself: one call at a time."""


def present(path: Path | None) -> bool:
    """Whether `path` holds a FunASR model directory."""
    return path is not None and all((path / name).is_file() for name in REQUIRED_FILES)


def device(settings: SenseVoiceSettings) -> str:
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(settings: SenseVoiceSettings) -> SenseVoicePair:
    """Both models from their local directories; never from a model hub."""
    for name, path in (
        ("AISTACK_SENSEVOICE_MODEL_DIR", settings.sensevoice_model_dir),
        ("AISTACK_SENSEVOICE_VAD_DIR", settings.sensevoice_vad_dir),
    ):
        if not present(path):
            # FunASR would take a missing path for a hub name and try to download it.
            raise FileNotFoundError(f"{name}={path} is not a model directory")
    from funasr import AutoModel

    on = device(settings)
    common = {
        "device": on,
        "ncpu": settings.sensevoice_cpu_threads or os.cpu_count() or 1,
        "disable_update": True,
        "disable_pbar": True,
        "disable_log": True,
        # no random dither in the features: the same audio always gives the same transcript
        "frontend_conf": {"dither": 0.0},
    }
    vad = AutoModel(model=str(settings.sensevoice_vad_dir), **common)
    asr = AutoModel(model=str(settings.sensevoice_model_dir), **common)
    return SenseVoicePair(asr=asr, vad=vad, device=on)


def unload(pair: SenseVoicePair) -> None:
    """Drop both models and give their memory back."""
    pair.asr = pair.vad = None
    gc.collect()
    if pair.device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def speech_spans(
    pair: SenseVoicePair, blocks: Iterable[tuple[np.ndarray, bool]]
) -> Iterator[tuple[float, float, np.ndarray]]:
    """The VAD's speech segments of 16 kHz mono audio read in `blocks` (samples, whether
    the last): (start, end) in seconds and the segment's samples, each as soon as its end
    is found. The VAD carries its state from block to block; only the samples from the
    start of a segment not yet ended (or the last few seconds) are held."""
    cache: dict[str, Any] = {}
    held = np.empty(0, dtype=np.float32)
    held_from = 0  # the sample offset of held[0]
    begin = None  # ms
    for block, last in blocks:
        held = np.concatenate([held, block])
        with pair.lock:
            result = pair.vad.generate(
                input=block, cache=cache, is_final=last, chunk_size=int(VAD_WINDOW_S * 1000)
            )
        # [[b, e]]: a whole segment; [[b, -1]]: one starts; [[-1, e]]: the open one ends
        for b, e in result[0]["value"]:
            if b >= 0 and e < 0:
                begin = b
                continue
            if b < 0:
                if begin is None:
                    continue
                b, begin = begin, None
            start, end = b * SAMPLE_RATE // 1000, e * SAMPLE_RATE // 1000
            yield b / 1000, e / 1000, held[max(start - held_from, 0) : end - held_from]
        # What a later segment may still need: from the open one's start, else the last
        # few seconds (the VAD places a start a little before it reports it).
        keep = held_from + held.size - _LOOKBACK
        if begin is not None:
            keep = min(keep, begin * SAMPLE_RATE // 1000)
        if keep > held_from:
            held, held_from = held[keep - held_from :], keep


def recognize(
    pair: SenseVoicePair,
    audio: np.ndarray,
    language: str,
    use_itn: bool,
    timestamps: bool,
    cancel: threading.Event,
) -> dict[str, Any]:
    """SenseVoice's raw result for one chunk: `text` with its rich tags; with `timestamps`,
    `words` and their `timestamp` spans in ms from the chunk's start. Setting `cancel`
    stops it between two steps of the model (raising Stopped)."""
    with pair.lock, stoppable(pair.asr.model, cancel):
        results = pair.asr.generate(
            input=audio, language=language, use_itn=use_itn, output_timestamp=timestamps
        )
    return results[0]

"""How the service calls FunASR; a benchmark can call it the same way in-process:

pair = load(settings)
for start, end in speech_spans(pair, audio):
    raw = recognize(pair, audio[int(start * 16000) : int(end * 16000)], "auto", True, True)

FunASR (and torch) are imported on first load, so the service answers /health at once.
"""

import gc
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aistack_asr_sensevoice.settings import SenseVoiceSettings

REQUIRED_FILES = ("config.yaml", "model.pt")


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


def speech_spans(pair: SenseVoicePair, audio: np.ndarray) -> list[tuple[float, float]]:
    """The VAD's speech segments of 16 kHz mono `audio`, as (start, end) in seconds."""
    with pair.lock:
        result = pair.vad.generate(input=audio)
    return [(begin / 1000, end / 1000) for begin, end in result[0]["value"]]


def recognize(
    pair: SenseVoicePair, audio: np.ndarray, language: str, use_itn: bool, timestamps: bool
) -> dict[str, Any]:
    """SenseVoice's raw result for one chunk: `text` with its rich tags; with `timestamps`,
    `words` and their `timestamp` spans in ms from the chunk's start."""
    with pair.lock:
        results = pair.asr.generate(
            input=audio, language=language, use_itn=use_itn, output_timestamp=timestamps
        )
    return results[0]

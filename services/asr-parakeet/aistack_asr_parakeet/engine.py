"""How the service runs NeMo; a benchmark can call it the same way in-process:

model = ParakeetModel.load(path, settings)
words = model.transcribe(audio)  # one window of 16 kHz mono float32; times in seconds
"""

import functools
import gc
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aistack_asr.audio import SAMPLE_RATE
from aistack_asr.stoppable import stoppable
from aistack_asr_parakeet.settings import ParakeetSettings
from aistack_contract.transcription import Word

log = logging.getLogger("aistack_asr_parakeet")

MIN_SAMPLES = SAMPLE_RATE
"""NeMo pads shorter input on both sides, which shifts its times: pad it ourselves, after."""


def device(settings: ParakeetSettings) -> torch.device:
    if settings.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(settings.device)


@functools.cache
def _asr_model_class() -> Any:
    """NeMo's `ASRModel`, imported on first use (it takes seconds)."""
    from nemo.collections.asr.models import ASRModel
    from nemo.utils import logging as nemo_logging

    if not log.isEnabledFor(logging.DEBUG):
        nemo_logging.setLevel(logging.ERROR)
    # The import leaves millions of long-lived objects: keep the collector off them, which
    # makes its passes during inference and at exit much faster.
    gc.collect()
    gc.freeze()
    return ASRModel


class ParakeetModel:
    """A loaded NeMo ASR model; one transcription at a time, full or local attention."""

    def __init__(self, model: Any, settings: ParakeetSettings) -> None:
        self.model = model
        self.settings = settings
        self._lock = threading.Lock()
        encoder = model.cfg.encoder
        self._own_attention = (encoder.self_attention_model, list(encoder.att_context_size))
        self._local_attention = False

    @classmethod
    def load(cls, path: Path, settings: ParakeetSettings) -> "ParakeetModel":
        if settings.parakeet_cpu_threads:
            torch.set_num_threads(settings.parakeet_cpu_threads)
        model = _asr_model_class().restore_from(str(path), map_location=device(settings))
        model.eval()
        # Chunk the subsampling convolutions only when an input is too big for them.
        model.change_subsampling_conv_chunking_factor(1)
        return cls(model, settings)

    def unload(self) -> None:
        on_cuda = next(self.model.parameters()).is_cuda
        del self.model
        gc.collect()
        if on_cuda:
            torch.cuda.empty_cache()

    def transcribe(self, audio: np.ndarray, cancel: threading.Event | None = None) -> list[Word]:
        """The words of `audio` (one window), with times in seconds from its start.
        Setting `cancel` stops it between two steps of the model (raising Stopped)."""
        duration = len(audio) / SAMPLE_RATE
        if len(audio) < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - len(audio)))
        with self._lock, stoppable(self.model, cancel or threading.Event()):
            self._use_local_attention(duration > self.settings.parakeet_local_attention_after_sec)
            (hypothesis,) = self.model.transcribe(
                [audio], batch_size=1, timestamps=True, verbose=False
            )
        return [
            Word(word=w["word"], start=min(w["start"], duration), end=min(w["end"], duration))
            for w in hypothesis.timestamp["word"]
        ]

    def _use_local_attention(self, local: bool) -> None:
        if local == self._local_attention:
            return
        if local:
            context = list(self.settings.parakeet_local_attention_context)
            self.model.change_attention_model("rel_pos_local_attn", context)
        else:
            self.model.change_attention_model(*self._own_attention)
        self._local_attention = local
        log.info("encoder attention: %s", "local" if local else "full")

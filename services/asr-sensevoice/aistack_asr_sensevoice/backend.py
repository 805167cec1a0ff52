"""The SenseVoice backend: the VAD first, then SenseVoice on each speech chunk, one segment each."""

import logging
import threading
from collections.abc import Iterator

import numpy as np

from aistack_asr.audio import Audio
from aistack_asr.backend import Backend, TranscribeEvent
from aistack_asr.stoppable import Stopped
from aistack_asr_sensevoice import engine, postprocess
from aistack_asr_sensevoice.engine import SenseVoicePair
from aistack_asr_sensevoice.settings import SenseVoiceSettings
from aistack_contract.events import BackendInfo, BackendSegment
from aistack_contract.models import ModelCard
from aistack_contract.transcription import Segment, TranscribeOptions

log = logging.getLogger("aistack_asr_sensevoice")

MODEL_ID = "iic/SenseVoiceSmall"
AUTO = "auto"
UNDETECTED = "unknown"
"""The language reported for `auto` when SenseVoice named none (no speech)."""

CARD = ModelCard(
    id=MODEL_ID,
    owned_by="FunAudioLLM",
    capabilities=["asr"],
    languages=list(postprocess.LANGUAGES),
    supports_streaming=True,
    supports_translate=False,
    supports_logprobs=False,
)


class SenseVoiceBackend(Backend[SenseVoiceSettings]):
    provider = "SenseVoice"
    weights = "asr-sensevoice"
    family = "sensevoice"

    def cards(self) -> list[ModelCard]:
        """The card while both model directories are there: SenseVoice needs its VAD."""
        present = engine.present(self.settings.sensevoice_model_dir) and engine.present(
            self.settings.sensevoice_vad_dir
        )
        return [CARD] if present else []

    def load(self, model_id: str) -> SenseVoicePair:
        return engine.load(self.settings)

    def unload(self, model: SenseVoicePair) -> None:
        engine.unload(model)

    def transcribe(
        self,
        model: SenseVoicePair,
        upload: Audio,
        options: TranscribeOptions,
        cancel: threading.Event,
    ) -> Iterator[TranscribeEvent]:
        """Info once the first chunk has told the language; then one segment per chunk,
        the audio read as the VAD goes."""
        # The shell has read the hint: one of the card's languages, or none.
        reported = options.language
        language = reported or AUTO
        announced = False
        segments = done = 0
        try:
            blocks = upload.blocks(engine.VAD_WINDOW_S)
            for start, end, samples in engine.speech_spans(model, blocks):
                if cancel.is_set():
                    return
                try:
                    chunk = self._recognize(
                        model, samples, start, end, language, options.word_timestamps, cancel
                    )
                except Stopped:
                    return
                done += 1
                if not announced:
                    announced = True
                    detected = reported or chunk.language or UNDETECTED
                    yield BackendInfo(language=detected, duration=upload.declared)
                if chunk.text:
                    words = chunk.words
                    segment = Segment(
                        id=segments, start=start, end=end, text=chunk.text, words=words
                    )
                    yield BackendSegment(segment=segment)
                    segments += 1
            if not announced:  # no speech: the audio was read to its end
                yield BackendInfo(language=reported or UNDETECTED, duration=upload.seconds)
        finally:
            if cancel.is_set():
                log.info("cancelled after %d VAD chunks", done)

    def _recognize(
        self,
        model: SenseVoicePair,
        samples: np.ndarray,
        start: float,
        end: float,
        language: str,
        timestamps: bool,
        cancel: threading.Event,
    ) -> postprocess.Chunk:
        raw = engine.recognize(
            model, samples, language, self.settings.sensevoice_use_itn, timestamps, cancel
        )
        return postprocess.parse(raw, start, end)

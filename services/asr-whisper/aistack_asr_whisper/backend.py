"""The faster-whisper backend: load, transcribe segment by segment, unload."""

import threading
from collections.abc import Iterator

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment as WhisperSegment

from aistack_asr.backend import Backend, TranscribeEvent
from aistack_asr_whisper import engine, models
from aistack_asr_whisper.settings import WhisperSettings
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.events import BackendInfo, BackendSegment
from aistack_contract.models import ModelCard
from aistack_contract.transcription import Segment, TranscribeOptions, Word

# Whisper's detector reads the first 30 s; the rest need not be turned into features.
_DETECTION_SAMPLES = 30 * 16_000


class WhisperBackend(Backend):
    provider = "Faster-Whisper"
    family = "whisper"
    detects_language = True

    def __init__(self, settings: WhisperSettings) -> None:
        self.settings = settings

    def cards(self) -> list[ModelCard]:
        found = models.discover(self.settings.whisper_model_dir)
        return [models.card(model_id, path) for model_id, path in found.items()]

    def load(self, model_id: str) -> WhisperModel:
        path = models.discover(self.settings.whisper_model_dir)[model_id]
        try:
            return WhisperModel(str(path), **engine.model_options(self.settings))
        except RuntimeError as exc:
            kind = ErrorKind.OVERFLOW if "out of memory" in str(exc).lower() else ErrorKind.UNKNOWN
            raise AistackError(kind, f"loading {model_id} failed: {exc}", self.provider) from exc

    def unload(self, model: WhisperModel) -> None:
        model.model.unload_model()

    def transcribe(
        self,
        model: WhisperModel,
        audio: np.ndarray,
        options: TranscribeOptions,
        cancel: threading.Event,
    ) -> Iterator[TranscribeEvent]:
        if options.detect_only:
            language, probability, _ = model.detect_language(audio[:_DETECTION_SAMPLES])
            yield BackendInfo(
                language=language, language_probability=probability, duration=len(audio) / 16_000
            )
            return
        segments, info = model.transcribe(
            audio, **engine.transcribe_options(options, self.settings)
        )
        try:
            yield BackendInfo(
                language=info.language,
                language_probability=info.language_probability,
                duration=info.duration,
            )
            for index, segment in enumerate(segments):
                if cancel.is_set():
                    return
                yield BackendSegment(segment=_segment(index, segment))
        finally:
            segments.close()


def _segment(index: int, segment: WhisperSegment) -> Segment:
    return Segment(
        id=index,
        seek=segment.seek,
        start=segment.start,
        end=segment.end,
        text=segment.text,
        tokens=segment.tokens,
        temperature=segment.temperature or 0.0,
        avg_logprob=segment.avg_logprob,
        compression_ratio=segment.compression_ratio,
        no_speech_prob=segment.no_speech_prob,
        words=None
        if segment.words is None
        else [
            Word(start=w.start, end=w.end, word=w.word.strip(), probability=w.probability)
            for w in segment.words
        ],
    )

"""The Parakeet backend: load, transcribe window by window, stitch, send the segments at the end."""

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from aistack_asr.audio import SAMPLE_RATE, Audio
from aistack_asr.backend import Backend, TranscribeEvent
from aistack_asr.stoppable import Stopped
from aistack_asr_parakeet import models
from aistack_asr_parakeet.chunks import Chunk, cut_points, read_chunks, stitch
from aistack_asr_parakeet.engine import ParakeetModel
from aistack_asr_parakeet.segments import build_segments
from aistack_asr_parakeet.settings import ParakeetSettings
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.events import BackendInfo, BackendSegment
from aistack_contract.models import ModelCard
from aistack_contract.transcription import TranscribeOptions, Word

log = logging.getLogger("aistack_asr_parakeet")

UNKNOWN_LANGUAGE = "auto"
"""The language reported without a hint: Parakeet detects it but does not say which."""


class ParakeetBackend(Backend[ParakeetSettings]):
    provider = "Parakeet"
    weights = "asr-parakeet"
    family = "parakeet"

    def cards(self) -> list[ModelCard]:
        return [models.card()] if self._model_file() else []

    def load(self, model_id: str) -> ParakeetModel:
        path = self._model_file()
        if path is None:
            raise AistackError(ErrorKind.UNKNOWN, f"the file of {model_id} is gone", self.provider)
        return ParakeetModel.load(path, self.settings)

    def unload(self, model: ParakeetModel) -> None:
        model.unload()

    def transcribe(
        self,
        model: ParakeetModel,
        upload: Audio,
        options: TranscribeOptions,
        cancel: threading.Event,
    ) -> Iterator[TranscribeEvent]:
        language = options.language or UNKNOWN_LANGUAGE  # a hint the shell has read
        windows = read_chunks(
            upload.pieces(),
            window=self._samples(self.settings.parakeet_window_sec),
            overlap=self._samples(self.settings.parakeet_overlap_sec),
            min_last=self._samples(self.settings.parakeet_min_last_chunk_sec),
        )
        chunks: list[Chunk] = []
        pieces: list[list[Word]] = []
        for index, (chunk, samples) in enumerate(windows):
            if index == 0:  # the audio decodes: accepted
                yield BackendInfo(language=language, duration=upload.declared)
            where = f"window {index + 1}, at {chunk.start / SAMPLE_RATE:.1f} s of "
            where += f"{upload.declared:.1f} s"
            if cancel.is_set():
                log.info("cancelled before %s", where)
                return
            try:
                words = model.transcribe(samples, cancel)
            except Stopped:
                log.info("cancelled in %s", where)
                return
            chunks.append(chunk)
            end = chunk.end / SAMPLE_RATE
            pieces.append([_shifted(w, chunk.start / SAMPLE_RATE, end) for w in words])
        words = stitch(pieces, cut_points(chunks, SAMPLE_RATE))
        log.info("%d words from %d window(s)", len(words), len(chunks))
        for segment in build_segments(words):
            if not options.word_timestamps:
                segment.words = None
            yield BackendSegment(segment=segment)

    def _model_file(self) -> Path | None:
        return models.find_model(self.settings.parakeet_model_path)

    @staticmethod
    def _samples(seconds: float) -> int:
        return round(seconds * SAMPLE_RATE)


def _shifted(word: Word, seconds: float, limit: float) -> Word:
    """`word` moved `seconds` later, no later than `limit`."""
    start, end = (min(t + seconds, limit) for t in (word.start, word.end))
    return word.model_copy(update={"start": start, "end": end})

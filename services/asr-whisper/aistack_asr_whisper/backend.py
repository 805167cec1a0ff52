"""The faster-whisper backend: load, transcribe segment by segment, unload."""

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.transcribe import Segment as WhisperSegment
from faster_whisper.transcribe import TranscriptionInfo
from faster_whisper.vad import VadOptions, get_speech_timestamps

from aistack_asr.audio import Audio
from aistack_asr.backend import Backend, TranscribeEvent
from aistack_asr_whisper import engine, models
from aistack_asr_whisper.settings import WhisperSettings
from aistack_asr_whisper.windows import Windows
from aistack_contract.events import BackendInfo, BackendSegment
from aistack_contract.models import ModelCard
from aistack_contract.transcription import Segment, TranscribeOptions, Word

# Whisper's detector reads the first 30 s; the rest need not be decoded.
_DETECTION_S = 30.0
# faster-whisper's own: the prompt is at most half of the decoder's 448 tokens, less one;
# a chunk decoded above this temperature does not prompt the next.
_PROMPT_TOKENS = 223
_PROMPT_RESET_ON_TEMPERATURE = 0.5
_FRAMES_PER_SECOND = 100  # Whisper's features: one frame per 10 ms
# A segment that ends this close to its window's end ran into it (timestamps are 20 ms).
_RAN_INTO_THE_END_S = 0.1
# Pauses to end windows in: shorter ones than transcription's VAD filter leaves out of
# the speech (2 s), padded less, so that continuous talk still has some.
_PAUSES = VadOptions(min_silence_duration_ms=300, speech_pad_ms=100)


class WhisperBackend(Backend[WhisperSettings]):
    provider = "Faster-Whisper"
    weights = "asr-whisper"
    family = "whisper"
    detects_language = True

    def cards(self) -> list[ModelCard]:
        found = models.discover(self.settings.whisper_model_dir)
        return [models.card(model_id, path) for model_id, path in found.items()]

    def load(self, model_id: str) -> WhisperModel:
        path = models.discover(self.settings.whisper_model_dir)[model_id]
        return WhisperModel(str(path), **engine.model_options(self.settings))

    def unload(self, model: WhisperModel) -> None:
        model.model.unload_model()

    def transcribe(
        self,
        model: WhisperModel,
        audio: Audio,
        options: TranscribeOptions,
        cancel: threading.Event,
    ) -> Iterator[TranscribeEvent]:
        if options.detect_only:
            language, probability, _ = model.detect_language(audio.first(_DETECTION_S))
            yield BackendInfo(
                language=language, language_probability=probability, duration=audio.declared
            )
            return
        asked = engine.transcribe_options(options, self.settings)
        length = round(self.settings.whisper_window_sec * audio.sample_rate)
        context = Context(model, options.prompt)
        language = options.language
        emitted = 0
        cut = Windows(audio.pieces(), length, _speech)
        for first, samples, last in cut:
            if cancel.is_set():
                return
            offset = first / audio.sample_rate
            segments, info = self._transcribe(model, samples, asked, language, context)
            try:
                if first == 0:
                    # The first window tells the language; the rest are held to it, as
                    # one call over the whole recording would be.
                    yield BackendInfo(
                        language=info.language,
                        language_probability=info.language_probability,
                        duration=audio.declared,
                    )
                    language = info.language
                # Each segment is sent once the next one came: a window's last one may be
                # given back (below).
                held: WhisperSegment | None = None
                seconds = samples.size / audio.sample_rate
                for segment in itertools.chain(segments, [None]):
                    if cancel.is_set():
                        return
                    if segment is None and held and not last and _ran_into_the_end(held, seconds):
                        cut.back(first + round(held.start * audio.sample_rate))
                        break
                    if held is not None:
                        context.follow(held)
                        yield BackendSegment(segment=_segment(emitted, held, offset))
                        emitted += 1
                    held = segment
            finally:
                segments.close()

    def _transcribe(
        self,
        model: WhisperModel,
        samples: np.ndarray,
        asked: dict[str, Any],
        language: str | None,
        context: "Context",
    ) -> tuple[Iterator[WhisperSegment], TranscriptionInfo]:
        """One window, by faster-whisper's sequential loop (each 30 s prompted with the
        text before it) or, with a batch size, its batched pipeline (speech chunks
        decoded side by side, each prompted with the user's prompt only)."""
        if batch_size := self.settings.whisper_batch_size:
            pipeline = BatchedInferencePipeline(model)
            return pipeline.transcribe(
                samples, **{**asked, "language": language, "batch_size": batch_size}
            )
        return model.transcribe(
            samples, **{**asked, "language": language, "initial_prompt": context.prompt()}
        )


class Context:
    """What each window is prompted with: the user's prompt, then the text before it, as
    faster-whisper's `condition_on_previous_text` carries it from one 30 s chunk to the
    next within a call (the last 223 tokens; dropped after a chunk decoded at a
    temperature above 0.5)."""

    def __init__(self, model: WhisperModel, prompt: str | None) -> None:
        self._tokens: list[int] = []
        self._text = prompt
        if prompt is not None:
            encoded = model.hf_tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)
            self._tokens = list(encoded.ids)

    def prompt(self) -> list[int] | str | None:
        if self._text is not None:  # the first window: faster-whisper encodes it itself
            text, self._text = self._text, None
            return text
        return self._tokens[-_PROMPT_TOKENS:] or None

    def follow(self, segment: WhisperSegment) -> None:
        self._tokens.extend(segment.tokens)
        if (segment.temperature or 0.0) > _PROMPT_RESET_ON_TEMPERATURE:
            self._tokens = []


def _ran_into_the_end(segment: WhisperSegment, seconds: float) -> bool:
    """Whether a window's last segment runs to the window's end, which is in a pause:
    Whisper found no end of the segment in the audio, and at the end of its input it
    often stops before the end of the words (the whole-recording call meets this once,
    at the recording's end; windows, at each window's end). A segment that starts the
    window can't be given back: the next window would begin where this one did."""
    return segment.start > 0 and segment.end >= seconds - _RAN_INTO_THE_END_S


def _speech(samples: np.ndarray) -> list[tuple[int, int]]:
    return [(span["start"], span["end"]) for span in get_speech_timestamps(samples, _PAUSES)]


def _segment(index: int, segment: WhisperSegment, offset: float) -> Segment:
    """Our segment of faster-whisper's, its times `offset` s later (the window's start)."""
    return Segment(
        id=index,
        seek=segment.seek + round(offset * _FRAMES_PER_SECOND),
        start=offset + segment.start,
        end=offset + segment.end,
        text=segment.text,
        tokens=segment.tokens,
        temperature=segment.temperature or 0.0,
        avg_logprob=segment.avg_logprob,
        compression_ratio=segment.compression_ratio,
        no_speech_prob=segment.no_speech_prob,
        words=None
        if segment.words is None
        else [
            Word(
                start=offset + w.start,
                end=offset + w.end,
                word=w.word.strip(),
                probability=w.probability,
            )
            for w in segment.words
        ],
    )

"""Decode what users upload (wav, mp3, m4a, ogg/opus, flac, webm, ...) with PyAV, a
piece at a time: an hour of audio is never held whole unless a backend asks for it."""

import io
from collections.abc import Iterator
from typing import BinaryIO

import av
import numpy as np

from aistack_contract.errors import AistackError, ErrorKind

SAMPLE_RATE = 16_000

# Decoded samples handed on at once: a second of 16 kHz audio is 64 KB of floats.
_PIECE_SAMPLES = 4 * SAMPLE_RATE


class Audio:
    """An upload's first audio stream as mono float32 samples at `sample_rate`, decoded
    as it is read.

    `open` checks the container up front (not empty, has an audio stream, declares no
    more than `max_seconds`); `pieces` then decodes, raising overflow as soon as the
    audio passes `max_seconds` and malformed for undecodable input or input without a
    sample. Samples go through 16-bit integers, as faster_whisper.decode_audio does: the
    same input gives the same audio."""

    def __init__(
        self, file: BinaryIO, provider: str, max_seconds: float | None, sample_rate: int
    ) -> None:
        self._file = file
        self.provider = provider
        self.sample_rate = sample_rate
        self._max_samples = None if max_seconds is None else int(max_seconds * sample_rate)
        self._max_seconds = max_seconds
        self.declared = 0.0
        """The duration the container declares (0 where it declares none): the first
        estimate, before the audio has been decoded."""
        self.samples = 0
        """Samples decoded so far."""
        self.complete = False
        """Whether `pieces` has decoded to the end: `samples` is then the true length."""

    @classmethod
    def open(
        cls,
        file: BinaryIO,
        provider: str,
        max_seconds: float | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> "Audio":
        audio = cls(file, provider, max_seconds, sample_rate)
        with audio._container() as container:
            audio.declared = (container.duration or 0) / av.time_base
        if max_seconds is not None and audio.declared > max_seconds:
            raise AistackError(  # before decoding hours of it
                ErrorKind.OVERFLOW,
                f"the audio declares {audio.declared:.0f} s, over the limit of {max_seconds:g} s",
                provider,
            )
        return audio

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    def pieces(self) -> Iterator[np.ndarray]:
        """The samples from the start, a few seconds at a time."""
        self.samples, self.complete = 0, False
        resampler = av.AudioResampler(format="s16", layout="mono", rate=self.sample_rate)
        pending: list[np.ndarray] = []  # int16, less than a piece
        held = 0
        try:
            with self._container() as container:
                for frame in container.decode(audio=0):
                    for out in resampler.resample(frame):
                        samples = out.to_ndarray().reshape(-1)
                        pending.append(samples)
                        held += samples.size
                        self._count(samples.size)
                    if held >= _PIECE_SAMPLES:
                        yield _floats(pending)
                        pending, held = [], 0
                for out in resampler.resample(None):
                    samples = out.to_ndarray().reshape(-1)
                    pending.append(samples)
                    self._count(samples.size)
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise self._malformed(f"the audio could not be decoded: {exc}") from None
        if self.samples == 0:
            raise self._malformed("the audio file holds no samples")
        self.complete = True
        if pending:
            yield _floats(pending)

    def blocks(self, seconds: float) -> Iterator[tuple[np.ndarray, bool]]:
        """The samples in blocks of `seconds` (the last one may be shorter), each with
        whether it is the last: for an engine that carries its state block to block."""
        size = int(seconds * self.sample_rate)
        pending: list[np.ndarray] = []
        held = 0
        ready: np.ndarray | None = None
        for piece in self.pieces():
            pending.append(piece)
            held += piece.size
            while held >= size:
                joined = np.concatenate(pending)
                if ready is not None:
                    yield ready, False
                ready, rest = joined[:size], joined[size:]
                pending, held = [rest], rest.size
        if held:
            if ready is not None:
                yield ready, False
            ready = np.concatenate(pending)
        if ready is not None:
            yield ready, True

    def whole(self) -> np.ndarray:
        """Every sample at once, for an engine that must see the whole recording."""
        return np.concatenate(list(self.pieces()))

    def first(self, seconds: float) -> np.ndarray:
        """The first `seconds` (or all, if shorter), decoding no further."""
        wanted = int(seconds * self.sample_rate)
        taken: list[np.ndarray] = []
        held = 0
        pieces = self.pieces()
        try:
            for piece in pieces:
                taken.append(piece[: wanted - held])
                held += taken[-1].size
                if held >= wanted:
                    break
        finally:
            pieces.close()
        return np.concatenate(taken)

    def _container(self) -> av.container.InputContainer:
        if self._file.seek(0, io.SEEK_END) == 0:
            raise self._malformed("the audio file is empty")
        self._file.seek(0)
        try:
            container = av.open(self._file, mode="r", metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise self._malformed(f"the audio could not be decoded: {exc}") from None
        if not container.streams.audio:
            container.close()
            raise self._malformed("the file has no audio stream")
        return container

    def _count(self, samples: int) -> None:
        self.samples += samples
        if self._max_samples is not None and self.samples > self._max_samples:
            raise AistackError(
                ErrorKind.OVERFLOW,
                f"the audio is longer than the limit of {self._max_seconds:g} s",
                self.provider,
            )

    def _malformed(self, message: str) -> AistackError:
        return AistackError(ErrorKind.MALFORMED, message, self.provider)


def decode_audio(
    data: bytes, provider: str, max_seconds: float | None = None, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """All of `data`'s audio at once (tests, benchmarks, short clips)."""
    return Audio.open(io.BytesIO(data), provider, max_seconds, sample_rate).whole()


def _floats(pending: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(pending).astype(np.float32) / 32768.0

"""Streaming audio encoders: 16-bit mono samples in, bytes of a response format out as made."""

import struct
from dataclasses import dataclass, field
from typing import Protocol

import av
import numpy as np


@dataclass(frozen=True)
class AudioFormat:
    """How one `response_format` is written."""

    content_type: str
    muxer: str | None = None
    """PyAV container format; None for raw 16-bit PCM."""
    codec: str | None = None
    rate: int | None = None
    """Fixed output sample rate; None keeps the voice's own."""
    wav_header: bool = False
    bit_rate: int | None = None
    """For lossy codecs; None keeps the encoder's default."""
    options: dict[str, str] = field(default_factory=dict)


FORMATS: dict[str, AudioFormat] = {
    # LAME's default for 22 kHz mono is 32 kbit/s, thin for speech: match AAC's and Opus's 64.
    "mp3": AudioFormat("audio/mpeg", "mp3", "libmp3lame", bit_rate=64000),
    # Ogg pages of 100 ms instead of a second, so the first sentence leaves without waiting.
    "opus": AudioFormat(
        "audio/opus", "ogg", "libopus", rate=48000, options={"page_duration": "100000"}
    ),
    "aac": AudioFormat("audio/aac", "adts", "aac"),
    "flac": AudioFormat("audio/flac", "flac", "flac"),
    "wav": AudioFormat("audio/wav", wav_header=True),
    # Headerless, so the rate is OpenAI's documented one: clients can't read it from the bytes.
    "pcm": AudioFormat("audio/pcm", rate=24000),
}

STREAMING_SIZE = 0xFFFFFFFF
"""RIFF and data chunk sizes of a WAV whose length is unknown when its header leaves."""


class Encoder(Protocol):
    def encode(self, samples: np.ndarray) -> bytes:
        """Encode int16 mono samples; return whatever output is ready."""

    def finish(self) -> bytes:
        """Flush and return the rest of the output."""

    def close(self) -> None:
        """Free the encoder's resources (also after an error)."""


def wav_header(rate: int) -> bytes:
    """A 44-byte header for 16-bit mono PCM of a length not known yet."""
    return (
        b"RIFF" + struct.pack("<I", STREAMING_SIZE) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data" + struct.pack("<I", STREAMING_SIZE)
    )  # fmt: skip


def _frame(samples: np.ndarray, rate: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


class PcmEncoder:
    """Raw s16le, resampled when the format fixes a rate, behind a WAV header when asked."""

    def __init__(self, fmt: AudioFormat, rate: int) -> None:
        self._rate = rate
        out_rate = fmt.rate or rate
        self._resampler = (
            av.AudioResampler(format="s16", layout="mono", rate=out_rate)
            if out_rate != rate
            else None
        )
        self._header = wav_header(out_rate) if fmt.wav_header else b""

    def _take_header(self) -> bytes:
        header, self._header = self._header, b""
        return header

    def _resampled(self, frame: av.AudioFrame | None) -> bytes:
        assert self._resampler is not None
        return b"".join(
            bytes(out.planes[0])[: out.samples * 2] for out in self._resampler.resample(frame)
        )

    def encode(self, samples: np.ndarray) -> bytes:
        if self._resampler is None:
            data = samples.astype("<i2").tobytes()
        else:
            data = self._resampled(_frame(samples, self._rate))
        return self._take_header() + data

    def finish(self) -> bytes:
        tail = self._resampled(None) if self._resampler is not None else b""
        return self._take_header() + tail

    def close(self) -> None:
        pass


class _Sink:
    """A write-only file for PyAV's muxer: what it writes waits here until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


class AvEncoder:
    """A PyAV codec and muxer writing to a non-seekable sink, so every packet can leave at once."""

    def __init__(self, fmt: AudioFormat, rate: int) -> None:
        assert fmt.muxer is not None and fmt.codec is not None
        self._rate = rate
        self._sink = _Sink()
        self._container = av.open(self._sink, "w", format=fmt.muxer, options=fmt.options)
        self._stream = self._container.add_stream(fmt.codec, rate=fmt.rate or rate, layout="mono")
        if fmt.bit_rate:
            self._stream.codec_context.bit_rate = fmt.bit_rate
        self._resampler = av.AudioResampler(
            format=self._stream.codec_context.format.name, layout="mono", rate=fmt.rate or rate
        )

    def _mux(self, frames: list[av.AudioFrame | None]) -> bytes:
        for frame in frames:
            self._container.mux(self._stream.encode(frame))
        return self._sink.take()

    def encode(self, samples: np.ndarray) -> bytes:
        return self._mux(self._resampler.resample(_frame(samples, self._rate)))

    def finish(self) -> bytes:
        data = self._mux([*self._resampler.resample(None), None])
        self._container.close()
        return data + self._sink.take()

    def close(self) -> None:
        self._container.close()


def open_encoder(fmt: AudioFormat, rate: int) -> Encoder:
    """An encoder for `fmt` fed with samples at `rate` Hz."""
    return AvEncoder(fmt, rate) if fmt.muxer else PcmEncoder(fmt, rate)

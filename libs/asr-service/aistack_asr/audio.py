"""Decode what users upload (wav, mp3, m4a, ogg/opus, flac, webm, ...) with PyAV."""

import io

import av
import numpy as np

from aistack_contract.errors import AistackError, ErrorKind

SAMPLE_RATE = 16_000


def decode_audio(
    data: bytes, provider: str, max_seconds: float | None = None, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The first audio stream of `data` as mono float32 samples at `sample_rate`.

    Raises malformed for empty or undecodable input, and overflow as soon as the
    decoded audio passes `max_seconds` (or up front, where the header declares more),
    without decoding the rest.
    """
    if not data:
        raise AistackError(ErrorKind.MALFORMED, "the audio file is empty", provider)
    max_samples = None if max_seconds is None else int(max_seconds * sample_rate)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []  # int16
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AistackError(ErrorKind.MALFORMED, "the file has no audio stream", provider)
            declared = (container.duration or 0) / av.time_base
            if max_seconds is not None and declared > max_seconds:
                raise AistackError(  # before decoding hours of it
                    ErrorKind.OVERFLOW,
                    f"the audio declares {declared:.0f} s, over the limit of {max_seconds:g} s",
                    provider,
                )
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    total += _append(chunks, out)
                if max_samples is not None and total > max_samples:
                    raise _too_long(max_seconds, provider)
            for out in resampler.resample(None):
                total += _append(chunks, out)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise AistackError(
            ErrorKind.MALFORMED, f"the audio could not be decoded: {exc}", provider
        ) from None
    if total == 0:
        raise AistackError(ErrorKind.MALFORMED, "the audio file holds no samples", provider)
    if max_samples is not None and total > max_samples:
        raise _too_long(max_seconds, provider)
    # via 16-bit samples, as faster_whisper.decode_audio does: the same input gives the same audio
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def _append(chunks: list[np.ndarray], frame: av.AudioFrame) -> int:
    samples = frame.to_ndarray().reshape(-1)
    chunks.append(samples)
    return samples.size


def _too_long(max_seconds: float | None, provider: str) -> AistackError:
    return AistackError(
        ErrorKind.OVERFLOW, f"the audio is longer than the limit of {max_seconds:g} s", provider
    )

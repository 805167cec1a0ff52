"""Real audio files in the formats users upload, made from a test's WAV with PyAV."""

import io
import wave
from pathlib import Path

# suffix -> (encoder, sample rate or None to keep the source's)
_ENCODERS: dict[str, tuple[str, int | None]] = {
    ".wav": ("pcm_s16le", None),
    ".mp3": ("libmp3lame", None),
    ".flac": ("flac", None),
    ".ogg": ("libopus", 48_000),
    ".opus": ("libopus", 48_000),
    ".webm": ("libopus", 48_000),
    ".m4a": ("aac", None),
}


def transcode(src: Path, dst: Path) -> Path:
    """Re-encode the audio of `src` as mono into `dst`; the format follows dst's suffix."""
    import av

    encoder, rate = _ENCODERS[dst.suffix]
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        source = inp.streams.audio[0]
        stream = out.add_stream(encoder, rate=rate or source.rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format, layout="mono", rate=stream.rate)
        for frame in [*inp.decode(source), None]:
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return dst


def repeat_wav(src: Path, dst: Path, min_seconds: float) -> Path:
    """Write `src` (a WAV) again and again into `dst` until it lasts at least `min_seconds`."""
    with wave.open(str(src), "rb") as inp:
        params = inp.getparams()
        frames = inp.readframes(params.nframes)
    times = max(1, -(-int(min_seconds * params.framerate) // params.nframes))
    with wave.open(str(dst), "wb") as out:
        out.setparams(params)
        out.writeframes(frames * times)
    return dst


def pcm(src: Path, rate: int) -> bytes:
    """The audio of `src` as raw 16-bit little-endian mono PCM at `rate` (the Realtime
    API's `audio/pcm` is 24 kHz)."""
    import av

    with av.open(str(src)) as inp:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        frames = [*inp.decode(inp.streams.audio[0]), None]
        return b"".join(
            bytes(out.planes[0])[: out.samples * 2] for f in frames for out in resampler.resample(f)
        )


def silence(seconds: float, rate: int = 16_000) -> bytes:
    """A 16-bit mono WAV file of `seconds` of silence, as bytes."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(2 * round(seconds * rate)))
    return out.getvalue()

"""The input audio of a realtime session: its formats, its buffer, and what the VAD and
the ASR backend are given of it.

Audio is kept as 16-bit mono PCM at the format's own rate (G.711 is decoded on arrival),
on one timeline in milliseconds from the session's first append, as OpenAI's
`audio_start_ms` / `audio_end_ms` count it. Pure Python over `array`: the edge has no
numeric library, and a session's audio is a few dozen kilobytes a second.
"""

import io
import itertools
import sys
import wave
from array import array
from dataclasses import dataclass

# The formats OpenAI's transcription sessions take: PCM at 24 kHz, G.711 at 8 kHz.
RATES = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}
VAD_RATE = 16_000


def _ulaw(code: int) -> int:
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def _alaw(code: int) -> int:
    code ^= 0x55
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = (
        (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return magnitude if code & 0x80 else -magnitude


_G711 = {
    "audio/pcmu": array("h", map(_ulaw, range(256))),
    "audio/pcma": array("h", map(_alaw, range(256))),
}


def to_pcm16(audio_format: str, data: bytes) -> bytes:
    """`data` of `audio_format` (PCM: whole samples) as 16-bit little-endian PCM at the
    same rate."""
    table = _G711.get(audio_format)
    if table is None:
        return data
    samples = array("h", (table[code] for code in data))
    return _little_endian(samples)


def samples_of(pcm: bytes) -> array:
    """16-bit little-endian PCM as an array of samples."""
    samples = array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _little_endian(samples: array) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def wav(pcm: bytes, rate: int) -> bytes:
    """`pcm` (16-bit mono) as a WAV file: what an ASR backend is sent."""
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(pcm)
    return out.getvalue()


class ToVadRate:
    """16-bit PCM at 24 or 8 kHz to floats at 16 kHz, for the VAD, piece by piece (the
    samples of a piece that do not make a whole step wait for the next). Linear
    interpolation with no low-pass filter: the VAD hears speech below 4 kHz, where the
    aliasing of a 24 kHz source does not reach."""

    def __init__(self, rate: int) -> None:
        if rate not in (24_000, 8_000):
            raise ValueError(f"no conversion from {rate} Hz to {VAD_RATE} Hz")
        self._rate = rate
        self._held: list[int] = []

    def __call__(self, pcm: bytes) -> list[float]:
        samples = self._held + samples_of(pcm).tolist()
        scale = 1 / 32768
        if self._rate == 24_000:  # 3 in, 2 out: at 0 and 1.5
            whole = len(samples) - len(samples) % 3
            self._held = samples[whole:]
            out = [0.0] * (whole // 3 * 2)
            out[0::2] = [s * scale for s in samples[0:whole:3]]
            out[1::2] = [
                (a + b) * scale / 2
                for a, b in zip(samples[1:whole:3], samples[2:whole:3], strict=True)
            ]
            return out
        # 8 kHz: 1 in, 2 out: the sample, then halfway to the next one
        self._held = samples[-1:]
        out = [0.0] * (2 * (len(samples) - 1))
        out[0::2] = [s * scale for s in samples[:-1]]
        out[1::2] = [(a + b) * scale / 2 for a, b in itertools.pairwise(samples)]
        return out


@dataclass
class InputBuffer:
    """The audio appended since the last commit or clear, as 16-bit PCM at `rate`, and
    where it lies on the session's timeline."""

    rate: int
    origin_ms: float = 0.0
    """The timeline's time of the first sample the buffer ever held at this rate."""
    start: int = 0
    """The number of samples (since `origin_ms`) dropped from the buffer's front."""

    def __post_init__(self) -> None:
        self._pcm = bytearray()

    @property
    def start_ms(self) -> float:
        return self.origin_ms + self.start * 1000 / self.rate

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.duration_s * 1000

    @property
    def samples(self) -> int:
        return len(self._pcm) // 2

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate

    def append(self, pcm: bytes) -> None:
        self._pcm += pcm

    def take(self, start_ms: float, end_ms: float) -> bytes:
        """The audio from `start_ms` to `end_ms`; the buffer keeps what follows."""
        first, last = self._offset(start_ms), self._offset(end_ms)
        taken = bytes(self._pcm[first:last])
        self.drop_before(end_ms)
        return taken

    def take_all(self) -> bytes:
        return self.take(self.start_ms, self.end_ms)

    def drop_before(self, ms: float) -> None:
        """Forget the audio before `ms` (a listening session keeps only its prefix
        padding: an idle session holds no more memory than that)."""
        cut = self._offset(ms)
        if cut > 0:
            del self._pcm[:cut]
            self.start += cut // 2

    def clear(self) -> None:
        self.drop_before(self.end_ms)

    def _offset(self, ms: float) -> int:
        """The byte offset of time `ms` in the buffer, clamped to it."""
        sample = round((ms - self.start_ms) * self.rate / 1000)
        return 2 * min(max(sample, 0), len(self._pcm) // 2)

"""A job's audio: decoded once to 16 kHz mono 16-bit PCM in a file, and read back a
window at a time, each cut in its quietest moment and sent as a WAV of its own.

The upload is decoded when the job is submitted, so audio that cannot be decoded is a
400 then, not a failed job later; the file is the job's whole state besides its text,
and a window is all that is held in memory, whatever the recording's length.
"""

import io
import sys
import wave
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from aistack_edge.errors import malformed, overflow

if TYPE_CHECKING:
    import av

RATE = 16_000
_WIDTH = 2  # bytes per sample
_FRAME = RATE // 10  # 100 ms: the unit a cut is looked for in
_CUT_ZONE = 0.25
"""A window ends in the quietest 100 ms of its last quarter: a word cut in two is rare
there, and a window is never shorter than three quarters of the setting."""


def decode(source: BinaryIO, target: Path, max_bytes: int) -> int:
    """Decode `source` into `target` (raw PCM); its length in samples. More than
    `max_bytes` of PCM is refused (413), undecodable audio too (400). Blocking: run it
    in a thread."""
    import av  # here: FFmpeg's libraries load with the first job, not with every edge

    written = 0
    try:
        with av.open(source, mode="r") as container, target.open("wb") as out:
            if not container.streams.audio:
                raise malformed("the file has no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            for frame in container.decode(container.streams.audio[0]):
                for chunk in resampler.resample(frame):
                    written += _write(out, chunk)
                    if written > max_bytes:
                        raise _too_long(max_bytes)
            for chunk in resampler.resample(None):
                written += _write(out, chunk)
    except (av.FFmpegError, ValueError) as exc:
        raise malformed(f"the audio could not be decoded: {exc}") from exc
    if written > max_bytes:
        raise _too_long(max_bytes)
    if not written:
        raise malformed("the audio has no samples")
    return written // _WIDTH


def _write(out: BinaryIO, frame: "av.AudioFrame") -> int:
    data = bytes(frame.planes[0])[: frame.samples * _WIDTH]
    out.write(data)
    return len(data)


def _too_long(max_bytes: int) -> Exception:
    return overflow(
        f"the background jobs' audio would pass its limit of {max_bytes // 2**20} MiB "
        "(16 kHz PCM: about 110 MiB an hour): wait for queued jobs to finish, or send "
        "a shorter file"
    )


def _samples(raw: bytes) -> array:
    samples = array("h")
    samples.frombytes(raw)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def window_end(path: Path, start: int, total: int, length: int) -> int:
    """Where the window that begins at sample `start` ends: the recording's end when
    that is within `length`, else the middle of the quietest 100 ms of its last quarter."""
    if total - start <= length:
        return total
    zone_start = start + int(length * (1 - _CUT_ZONE))
    with path.open("rb") as file:
        file.seek(zone_start * _WIDTH)
        zone = _samples(file.read((start + length - zone_start) * _WIDTH))
    frames = range(0, len(zone) - _FRAME + 1, _FRAME)
    quietest = min(frames, key=lambda at: sum(x * x for x in zone[at : at + _FRAME]))
    return zone_start + quietest + _FRAME // 2


def wav_of(path: Path, start: int, end: int) -> bytes:
    """Samples `start` to `end` of the PCM file as a WAV file."""
    with path.open("rb") as file:
        file.seek(start * _WIDTH)
        raw = file.read((end - start) * _WIDTH)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(_WIDTH)
        out.setframerate(RATE)
        out.writeframes(raw)
    return buffer.getvalue()

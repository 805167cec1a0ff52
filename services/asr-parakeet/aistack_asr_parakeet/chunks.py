"""Long-form audio: plan overlapping windows, then stitch their words at the overlaps."""

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from aistack_contract.transcription import Word


@dataclass(frozen=True)
class Chunk:
    """A window of the audio, in samples: `audio[start:end]`."""

    start: int
    end: int


def plan_chunks(total: int, window: int, overlap: int, min_last: int) -> list[Chunk]:
    """Windows of `window` samples, each starting `window - overlap` after the one before,
    covering `total` samples; a last window shorter than `min_last` joins the one before it.
    """
    silence = [np.zeros(total, dtype=np.float32)]
    return [chunk for chunk, _ in read_chunks(silence, window, overlap, min_last)]


def read_chunks(
    pieces: Iterable[np.ndarray], window: int, overlap: int, min_last: int
) -> Iterator[tuple[Chunk, np.ndarray]]:
    """`plan_chunks`'s windows of the audio in `pieces`, with their samples, read as the
    pieces come: what is held is a window and the look-ahead that tells whether a short
    last window joins it, not the recording."""
    if not 0 <= overlap < window:
        raise ValueError(f"the overlap ({overlap}) must be shorter than the window ({window})")
    step = window - overlap
    # Enough to tell whether this window is the last, and whether the next one would be
    # the last and too short to stand alone.
    needed = max(window + 1, step + min(min_last, window + 1))
    source = iter(pieces)
    held = np.empty(0, dtype=np.float32)
    start = 0  # the sample offset of held[0], and of the next window
    ended = False
    while True:
        parts, read = [held], held.size
        while read < needed and not ended:
            piece = next(source, None)
            if piece is None:
                ended = True
            else:
                parts.append(piece)
                read += piece.size
        if len(parts) > 1:
            held = np.concatenate(parts)
        rest = held.size  # samples from `start`: all of the recording's rest when ended
        if ended and rest == 0 and start > 0:  # the window before ended with the audio
            return
        next_rest = rest - step
        if ended and (rest <= window or (next_rest <= window and next_rest < min_last)):
            yield Chunk(start, start + rest), held
            return
        yield Chunk(start, start + window), held[:window]
        held = held[step:]
        start += step


def cut_points(chunks: Sequence[Chunk], sample_rate: int) -> list[float]:
    """Where one window hands over to the next: the middle of their overlap, in seconds."""
    return [(b.start + a.end) / 2 / sample_rate for a, b in itertools.pairwise(chunks)]


def stitch(pieces: Sequence[Sequence[Word]], cuts: Sequence[float]) -> list[Word]:
    """One word list from the windows' words (absolute times, window by window).

    Window i keeps the words centred between cut i-1 and cut i, so each stretch of
    audio is told by the window that saw it with the most context; a word that both
    windows kept across a cut (same text, overlapping times) is kept once.
    """
    if len(pieces) != len(cuts) + 1:
        raise ValueError(f"{len(pieces)} windows need {len(pieces) - 1} cuts, not {len(cuts)}")
    bounds = [float("-inf"), *cuts, float("inf")]
    words: list[Word] = []
    for index, piece in enumerate(pieces):
        low, high = bounds[index], bounds[index + 1]
        kept = [w for w in piece if low <= (w.start + w.end) / 2 < high]
        if words and kept and _same_word(words[-1], kept[0]):
            kept = kept[1:]
        words.extend(kept)
    return monotonic(words)


def monotonic(words: Sequence[Word]) -> list[Word]:
    """The words with times that never go back: each starts no earlier than the last ended."""
    out: list[Word] = []
    end = 0.0
    for word in words:
        start = max(word.start, end)
        end = max(word.end, start)
        out.append(word.model_copy(update={"start": start, "end": end}))
    return out


def _same_word(a: Word, b: Word) -> bool:
    return _normal(a.word) == _normal(b.word) and a.start < b.end and b.start < a.end


def _normal(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())

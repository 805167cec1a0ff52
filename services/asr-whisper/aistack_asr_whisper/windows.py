"""A recording as consecutive windows cut in its pauses: a window's samples and features
are all a transcription holds at once, whatever the recording's length.

faster-whisper's `transcribe` takes the whole recording as one array and computes the
features of all of it before its first segment: memory and the time to the first words
grow with the length. Fed a window at a time, it does the same work in bounded memory.
A window ends in the longest pause of its second half, so that no word is cut in two
and the next window begins in silence, as Whisper expects a recording to.
"""

from collections.abc import Callable, Iterable, Iterator

import numpy as np

Spans = Callable[[np.ndarray], list[tuple[int, int]]]
"""The speech in some samples: (start, end) sample offsets, in order."""


def windows(
    pieces: Iterable[np.ndarray], length: int, speech: Spans
) -> Iterator[tuple[int, np.ndarray]]:
    """(offset of the first sample, samples) of windows of at most `length` samples and
    at least half of it (the last one aside), from `pieces` read as they come."""
    held: list[np.ndarray] = []
    size = start = 0
    for piece in pieces:
        held.append(piece)
        size += piece.size
        if size < length:
            continue
        buffer = np.concatenate(held)
        while buffer.size >= length:
            cut = cut_point(buffer[:length], speech)
            yield start, buffer[:cut]
            start += cut
            buffer = buffer[cut:]
        held, size = [buffer], buffer.size
    if size:
        yield start, np.concatenate(held)


def cut_point(window: np.ndarray, speech: Spans) -> int:
    """Where to end `window`: in the middle of the longest pause in its second half, or
    at its end where speech runs through all of that half."""
    half = window.size // 2
    spans = [(start + half, end + half) for start, end in speech(window[half:])]
    edges = [half, *(edge for span in spans for edge in span), window.size]
    # Pauses: from the second half's start to the first speech, between two spans, and
    # from the last speech to the window's end.
    pauses = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]
    start, end = max(pauses, key=lambda pause: pause[1] - pause[0])
    return (start + end) // 2 if end > start else window.size

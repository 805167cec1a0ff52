"""A recording as consecutive windows cut in its pauses: a window's samples and features
are all a transcription holds at once, whatever the recording's length.

faster-whisper's `transcribe` takes the whole recording as one array and computes the
features of all of it before its first segment: memory and the time to the first words
grow with the length. Fed a window at a time, it does the same work in bounded memory.
A window ends in the longest pause of its second half, so that no word is cut in two
and the next window begins in silence, as Whisper expects a recording to; where the
consumer gives a window's end back (`Windows.back`), the next one begins where it says.
"""

from collections.abc import Callable, Iterable, Iterator

import numpy as np

Spans = Callable[[np.ndarray], list[tuple[int, int]]]
"""The speech in some samples: (start, end) sample offsets, in order."""


class Windows:
    """Windows of at most `length` samples and at least half of it (the last one aside),
    from `pieces` read as they come; iterating yields (offset of the first sample,
    samples, whether it is the last).

    The consumer may give a window's end back (`back`): when Whisper ran into the end of
    a window before the end of its words, the next window begins where that segment
    began, so the words are heard again with the speech after them."""

    def __init__(self, pieces: Iterable[np.ndarray], length: int, speech: Spans) -> None:
        self._pieces, self._length, self._speech = pieces, length, speech
        self._back: int | None = None

    def back(self, offset: int) -> None:
        """Begin the next window at `offset` (in samples from the recording's start),
        inside the window just given and after its first sample."""
        self._back = offset

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, bool]]:
        start, buffer = 0, np.zeros(0, np.float32)
        pieces = iter(self._pieces)
        while True:
            held, size = [buffer], buffer.size
            while size < self._length and (piece := next(pieces, None)) is not None:
                held.append(piece)
                size += piece.size
            buffer = np.concatenate(held)
            if buffer.size < self._length:  # the pieces have ended
                if buffer.size:
                    yield start, buffer, True
                return
            cut = cut_point(buffer[: self._length], self._speech)
            yield start, buffer[:cut], False
            if self._back is not None and start < self._back < start + cut:
                cut = self._back - start
            self._back = None
            start, buffer = start + cut, buffer[cut:]


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

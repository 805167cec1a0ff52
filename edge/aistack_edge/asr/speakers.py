"""Words and speaker turns composed into OpenAI's diarized segments: pure functions.

A word goes to the speaker whose turn overlaps it most (the nearest turn where none
does); a segment is a run of words by one speaker. Speakers take the names of known
speakers whose reference clip sounds like them (cosine similarity of voice prints over
a threshold, each name once, best pairs first), the others letters in the order they
first speak: A, B, ...
"""

import math
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from aistack_contract.diarization import Diarization, SpeakerTurn
from aistack_contract.transcription import Segment, Word
from aistack_edge.asr.render import join_texts


@dataclass(frozen=True)
class Said:
    """One word (or a segment without word times, taken whole) and who said it."""

    speaker: str
    start: float
    end: float
    text: str


def words_of(segment: Segment) -> list[Word]:
    """A segment's words; a backend that gave no word times gives the segment whole."""
    if segment.words:
        return segment.words
    return [Word(start=segment.start, end=segment.end, word=segment.text)]


def _cosine(a: list[float], b: list[float]) -> float:
    """Plain Python: a few voice prints of a few hundred numbers each, and the edge's
    image has no numpy."""
    norm = math.hypot(*a) * math.hypot(*b)
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def names(diarization: Diarization, known: list[str], threshold: float) -> dict[str, str]:
    """The public name of each of the diarizer's speakers."""
    order = list(dict.fromkeys(turn.speaker for turn in diarization.turns))
    order += [s for s in diarization.speakers if s not in order]
    pairs = sorted(
        (
            (_cosine(diarization.speakers[speaker], reference), speaker, name)
            for speaker in order
            if speaker in diarization.speakers
            for name, reference in zip(known, diarization.references, strict=False)
            if reference is not None
        ),
        reverse=True,
    )
    named: dict[str, str] = {}
    for similarity, speaker, name in pairs:
        if similarity >= threshold and speaker not in named and name not in named.values():
            named[speaker] = name
    letters = (letter for letter in _letters() if letter not in known)
    return {speaker: named.get(speaker) or next(letters) for speaker in order}


def _letters() -> Iterator[str]:
    """A, B, ..., Z, AA, AB, ...: as many as there are speakers."""
    yield from string.ascii_uppercase
    for first in string.ascii_uppercase:
        for second in string.ascii_uppercase:
            yield first + second


def speaker_of(word: Word, turns: list[SpeakerTurn]) -> str | None:
    """The diarizer's speaker for a word: most overlap, else the nearest turn."""
    if not turns:
        return None

    def overlap(turn: SpeakerTurn) -> float:
        return min(word.end, turn.end) - max(word.start, turn.start)

    best = max(turns, key=overlap)
    if overlap(best) > 0:
        return best.speaker
    middle = (word.start + word.end) / 2
    return min(turns, key=lambda t: min(abs(middle - t.start), abs(middle - t.end))).speaker


class Composer:
    """Words in, finished segments out: a segment is final once a word of another
    speaker follows it (what a stream sends as soon as it is so)."""

    def __init__(self, diarization: Diarization, labels: dict[str, str]) -> None:
        self._turns = diarization.turns
        self._labels = labels
        self._run: list[Said] = []
        self.count = 0

    def add(self, words: Iterable[Word]) -> list[dict]:
        """The segments that the words finish."""
        done = []
        for word in words:
            speaker = speaker_of(word, self._turns)
            label = self._labels.get(speaker, "A") if speaker else "A"
            if self._run and self._run[-1].speaker != label:
                done.append(self._close())
            self._run.append(Said(label, word.start, word.end, word.word))
        return done

    def finish(self) -> list[dict]:
        """The last segment, if any words are left."""
        return [self._close()] if self._run else []

    def _close(self) -> dict:
        run, self._run = self._run, []
        segment = {
            "id": f"seg_{self.count}",
            "start": run[0].start,
            "end": run[-1].end,
            "speaker": run[0].speaker,
            "text": join_texts([said.text for said in run]),
            "type": "transcript.text.segment",
        }
        self.count += 1
        return segment

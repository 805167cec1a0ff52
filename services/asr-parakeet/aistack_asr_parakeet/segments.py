"""Sentence segments rebuilt from timed words (Parakeet gives words, not sentences)."""

from collections.abc import Sequence

from aistack_contract.transcription import Segment, Word

MAX_SEGMENT_SEC = 30.0
"""The contract's safety cap on a sentence segment."""

_SENTENCE_END = ".!?…"
_CLAUSE_END = ",;:"
_CLOSERS = "\"')]\u00bb\u201d\u2019"  # quotes and brackets that may follow the mark


def build_segments(words: Sequence[Word], max_sec: float = MAX_SEGMENT_SEC) -> list[Segment]:
    """One segment per sentence (ending at . ! ? or …); a sentence that would pass `max_sec`
    is cut after its last clause (, ; :) before the cap, or else before the word that passes it.
    """
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        while current and word.end - current[0].start > max_sec:
            cut = _last_clause_end(current)
            groups.append(current[:cut])
            current = current[cut:]
        current.append(word)
        if _ends_with(word.word, _SENTENCE_END):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return [_segment(index, group) for index, group in enumerate(groups)]


def _last_clause_end(words: Sequence[Word]) -> int:
    """How many of `words` to keep: up to the last clause end, or all of them."""
    for index in range(len(words) - 1, 0, -1):
        if _ends_with(words[index - 1].word, _CLAUSE_END):
            return index
    return len(words)


def _ends_with(word: str, marks: str) -> bool:
    stripped = word.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in marks


def _segment(index: int, words: list[Word]) -> Segment:
    return Segment(
        id=index,
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.word for w in words),
        words=words,
    )

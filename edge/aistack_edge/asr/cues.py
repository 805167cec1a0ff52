"""Subtitle cue sizing from word times: at most 70 characters and 1-7 s per cue.

Cues never cross a sentence segment; a segment without word times stays whole.
"""

from aistack_contract.transcription import Segment, Word
from aistack_edge.asr.render import join_texts

MAX_CHARS = 70
MAX_SECONDS = 7.0
MIN_SECONDS = 1.0


def _text(words: list[Word]) -> str:
    return join_texts([w.word for w in words])


def _fits(cue: list[Word], word: Word) -> bool:
    return len(_text([*cue, word])) <= MAX_CHARS and word.end - cue[0].start <= MAX_SECONDS


def _split_words(words: list[Word]) -> list[list[Word]]:
    cues: list[list[Word]] = []
    for word in words:
        if cues and _fits(cues[-1], word):
            cues[-1].append(word)
        else:
            cues.append([word])
    return cues


def subtitle_cues(segments: list[Segment]) -> list[Segment]:
    """Re-cut sentence segments into subtitle cues, numbered from 0."""
    cues: list[Segment] = []
    for segment in segments:
        if not segment.words:
            cues.append(segment.model_copy())
            continue
        for words in _split_words(segment.words):
            cues.append(
                segment.model_copy(
                    update={
                        "start": words[0].start,
                        "end": words[-1].end,
                        "text": " " + _text(words),
                        "words": words,
                    }
                )
            )
    for index, cue in enumerate(cues):
        cue.id = index
        if cue.end - cue.start < MIN_SECONDS:
            limit = cues[index + 1].start if index + 1 < len(cues) else cue.start + MIN_SECONDS
            cue.end = max(cue.end, min(cue.start + MIN_SECONDS, limit))
    return cues

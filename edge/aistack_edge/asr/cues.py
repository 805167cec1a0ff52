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


def _fits(cue: list[Word], token: list[Word]) -> bool:
    return len(_text([*cue, *token])) <= MAX_CHARS and token[-1].end - cue[0].start <= MAX_SECONDS


def _spans(text: str, words: list[Word]) -> list[tuple[int, int]] | None:
    """Where each word stands in the segment's text, in order; None where one is not
    found there (a backend whose words are not pieces of its text)."""
    spans, at = [], 0
    for word in words:
        piece = word.word.strip()
        start = text.find(piece, at)
        if not piece or start < 0:
            return None
        at = start + len(piece)
        spans.append((start, at))
    return spans


def _tokens(words: list[Word], spans: list[tuple[int, int]] | None) -> list[list[Word]]:
    """The words grouped as the text writes them: a word with no space before it
    ("sub" "-paddle", "你" "好。") goes with the one before, so that no cue cuts it."""
    tokens: list[list[Word]] = []
    for index, word in enumerate(words):
        glued = spans is not None and index > 0 and spans[index][0] == spans[index - 1][1]
        if glued:
            tokens[-1].append(word)
        else:
            tokens.append([word])
    return tokens


def _split(tokens: list[list[Word]]) -> list[list[Word]]:
    cues: list[list[Word]] = []
    for token in tokens:
        if cues and _fits(cues[-1], token):
            cues[-1].extend(token)
        else:
            cues.append(list(token))
    return cues


def subtitle_cues(segments: list[Segment]) -> list[Segment]:
    """Re-cut sentence segments into subtitle cues, numbered from 0. A cue's text is the
    segment's own text over its words, so that the cues join back to it."""
    cues: list[Segment] = []
    for segment in segments:
        if not segment.words:
            cues.append(segment.model_copy())
            continue
        spans = _spans(segment.text, segment.words)
        at = 0
        for words in _split(_tokens(segment.words, spans)):
            text = _text(words)
            if spans is not None:
                first, last = at, at + len(words) - 1
                text = segment.text[spans[first][0] : spans[last][1]]
            at += len(words)
            cues.append(
                segment.model_copy(
                    update={
                        "start": words[0].start,
                        "end": words[-1].end,
                        "text": " " + text,
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

"""From SenseVoice's raw output for one VAD chunk to clean text, its language and word times.

SenseVoice writes rich tags before the text (`<|en|><|NEUTRAL|><|Speech|><|withitn|>Hello.`),
and its English output can glue words together (`nice to meetyou`), a quirk of its CJK-centric
tokenizer. Here the tags go, the language tag is read, and the missing spaces are put back.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

from aistack_contract.transcription import Word

LANGUAGES = ("zh", "yue", "en", "ja", "ko")

_TAG = re.compile(r"<\|([^|]*)\|>")
_LATIN_RUN = re.compile(r"[A-Za-z']+")
# "hello.world" -> "hello. world"; leaves "3.5", "e.g." and "U.S." alone.
_GLUED_PUNCTUATION = re.compile(r"(?<=[a-z]{2})([,.!?;:])(?=[A-Za-z])")
_SPACE_MARK = "\u2581"  # SentencePiece's word-start mark


@dataclass(frozen=True)
class Chunk:
    language: str | None
    """The language tag SenseVoice put first; None for <|nospeech|> or none."""
    text: str
    words: list[Word] | None


def parse(raw: dict[str, Any], start: float, end: float) -> Chunk:
    """`raw` is one result of `AutoModel.generate` for the audio from `start` to `end` (s)."""
    text = respace(strip_tags(raw.get("text", "")))
    words = None
    if "words" in raw and "timestamp" in raw:
        words = word_times(raw["words"], raw["timestamp"], start, end)
    return Chunk(language_of(raw.get("text", "")), text, words)


def language_of(raw_text: str) -> str | None:
    match = _TAG.match(raw_text.lstrip())
    return match[1] if match and match[1] in LANGUAGES else None


def strip_tags(raw_text: str) -> str:
    return _TAG.sub(" ", raw_text)


def respace(text: str) -> str:
    """Split glued English words, add a space after glued punctuation, collapse whitespace."""
    text = _LATIN_RUN.sub(lambda m: " ".join(split_glued(m[0])), text)
    text = _GLUED_PUNCTUATION.sub(r"\1 ", text)
    return " ".join(text.split())


@cache
def _language_model() -> Any:
    import wordninja  # loads its word list (about 0.5 s): only when first needed

    return wordninja.DEFAULT_LANGUAGE_MODEL


def _known(word: str) -> bool:
    return word.lower() in _language_model()._wordcost


def split_glued(run: str) -> list[str]:
    """The English words a run of letters glues together; [run] when it is one word.

    Short runs, known words, camelCase and acronyms are left alone, and so is a run that
    would only split into unknown words or stray letters.
    """
    if len(run) < 4 or run[1:] != run[1:].lower() or _known(run):
        return [run]
    pieces = _language_model().split(run)
    if len(pieces) > 1 and all(_known(p) and (len(p) > 1 or p in "aAI") for p in pieces):
        return pieces
    return [run]


def word_times(
    pieces: list[str], spans_ms: list[list[int]], start: float, end: float
) -> list[Word]:
    """SenseVoice's words (ms from the chunk's start) as Words in seconds of the whole audio.

    Tags are dropped, punctuation joins the word before it, glued words are split and share
    their time by length. Times stay inside [start, end] and never go backwards.
    """
    words: list[Word] = []
    for piece, (begin_ms, end_ms) in zip(pieces, spans_ms, strict=False):
        text = strip_tags(piece).replace(_SPACE_MARK, " ").strip()
        if not text:
            continue
        floor = words[-1].end if words else start
        t0 = min(max(start + begin_ms / 1000, floor), end)
        t1 = min(max(start + end_ms / 1000, t0), end)
        if words and all(unicodedata.category(c).startswith("P") for c in text):
            words[-1] = words[-1].model_copy(update={"word": words[-1].word + text, "end": t1})
            continue
        words.extend(_shared(text, t0, t1))
    return words


def _shared(text: str, t0: float, t1: float) -> list[Word]:
    """`text`'s words (one unless glued) with [t0, t1] shared by their length."""
    parts = split_glued(text) if _LATIN_RUN.fullmatch(text) else [text]
    total = sum(len(p) for p in parts)
    words, at = [], t0
    for part in parts:
        until = at + (t1 - t0) * len(part) / total
        words.append(Word(start=round(at, 3), end=round(until, 3), word=part))
        at = until
    return words

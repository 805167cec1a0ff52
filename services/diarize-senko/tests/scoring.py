"""How well a diarized transcript's speakers match a conversation's true turns."""

from collections.abc import Sequence
from typing import Protocol

from aistack_testing.conversation import Turn


class Labelled(Protocol):
    start: float
    end: float
    speaker: str
    text: str


def true_speaker(start: float, end: float, turns: list[Turn]) -> str:
    """The voice whose true turn overlaps [start, end] most."""
    return max(turns, key=lambda t: min(end, t.end) - max(start, t.start)).speaker


def attributed_share(
    segments: Sequence[Labelled], turns: list[Turn], voices: dict[str, str]
) -> float:
    """The share of words (counted per segment) whose label names the true voice."""
    right = total = 0
    for segment in segments:
        words = len(segment.text.split())
        total += words
        if voices.get(segment.speaker) == true_speaker(segment.start, segment.end, turns):
            right += words
    return right / max(total, 1)

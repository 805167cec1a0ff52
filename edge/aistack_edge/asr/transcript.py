"""Turn a backend's event stream into the public result and the public SSE events."""

import math
from collections.abc import AsyncIterator

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.events import (
    BackendDone,
    BackendError,
    BackendEvent,
    BackendInfo,
    BackendSegment,
    DeltaSegment,
    TextDelta,
    TextDone,
)
from aistack_contract.transcription import (
    DurationUsage,
    Logprob,
    Segment,
    TranscriptionResult,
    Word,
)
from aistack_edge.asr.cues import subtitle_cues
from aistack_edge.asr.render import join_texts, separator

# The smallest probability a logprob is taken of (a word Whisper gives 0 has log 0 = -inf).
_FLOOR = 1e-10


async def info_of(events: AsyncIterator[BackendEvent], provider: str) -> BackendInfo:
    """A backend stream's first event, its info: the backend has accepted the audio
    (decoded and validated it). An error event before it raises."""
    async for event in events:
        match event:
            case BackendInfo():
                return event
            case BackendError():
                raise AistackError(event.error.kind, event.error.message, event.error.provider)
            case _:
                raise AistackError(ErrorKind.UNKNOWN, f"{provider} sent no info event", provider)
    raise AistackError(ErrorKind.NETWORK, f"{provider} ended the stream before it began", provider)


async def segments_of(
    events: AsyncIterator[BackendEvent], info: BackendInfo, provider: str
) -> AsyncIterator[Segment]:
    """The segments of a backend stream after its info event `info`. A backend error
    event, or a stream that ends before `done`, raises. The true duration that `done`
    may carry replaces the declared one in `info`."""
    async for event in events:
        match event:
            case BackendSegment():
                yield event.segment
            case BackendError():
                raise AistackError(event.error.kind, event.error.message, event.error.provider)
            case BackendDone():
                if event.duration is not None:
                    info.duration = event.duration
                return
            case BackendInfo():
                raise AistackError(ErrorKind.UNKNOWN, f"{provider} sent a second info", provider)
    raise AistackError(
        ErrorKind.NETWORK, f"{provider} ended the stream before it was done", provider
    )


def shape(segments: list[Segment], granularity: str) -> list[Segment]:
    """Segments renumbered, and re-cut into subtitle cues when asked."""
    shaped = subtitle_cues(segments) if granularity == "subtitle" else segments
    for index, segment in enumerate(shaped):
        segment.id = index
    return shaped


def result_of(info: BackendInfo, segments: list[Segment], translated: bool) -> TranscriptionResult:
    words = [word for segment in segments for word in segment.words or []]
    return TranscriptionResult(
        task="translate" if translated else "transcribe",
        language=info.language,
        duration=info.duration,
        text=join_texts([s.text for s in segments]),
        segments=segments,
        words=words or None,
        usage=DurationUsage(seconds=info.duration),
    )


def logprobs_of(words: list[Word], text_before: str = "") -> list[Logprob]:
    """Log-probabilities of `words`, one per word, each with the separator before it (so
    that the tokens join like the text they follow `text_before` in). A word's probability
    is its backend's (Whisper's: the mean of its tokens' probabilities); one of 0 has a
    log-probability of minus infinity, which JSON cannot carry: the floor stands in."""
    logprobs = []
    for word in words:
        text = word.word.strip()
        token = separator(text_before, text) + text
        text_before += token
        probability = max(word.probability or 0.0, _FLOOR)
        logprobs.append(
            Logprob(token=token, logprob=math.log(probability), bytes=list(token.encode()))
        )
    return logprobs


def delta_of(segment: Segment, text_so_far: str, logprobs: bool = False) -> TextDelta:
    """One SSE delta; its text carries the separator so that the deltas concatenate
    to exactly the non-streaming text."""
    text = segment.text.strip()
    return TextDelta(
        delta=separator(text_so_far, text) + text,
        segment=DeltaSegment(start=segment.start, end=segment.end, words=segment.words),
        logprobs=logprobs_of(segment.words or [], text_so_far) if logprobs else None,
    )


def done_of(info: BackendInfo, text: str, logprobs: list[Logprob] | None = None) -> TextDone:
    return TextDone(
        text=text,
        language=info.language,
        duration=info.duration,
        usage=DurationUsage(seconds=info.duration),
        logprobs=logprobs,
    )

"""The transcription result in each response_format, and the text joins they share."""

import json
import unicodedata

from aiohttp import web

from aistack_contract.transcription import Logprob, Segment, TextResult, TranscriptionResult


def _is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def separator(before: str, after: str) -> str:
    """What goes between two segments' texts: nothing around CJK, else a space."""
    if not before or not after or _is_cjk(before[-1]) or _is_cjk(after[0]):
        return ""
    return " "


def join_texts(texts: list[str]) -> str:
    joined = ""
    for text in (t.strip() for t in texts):
        if text:
            joined += separator(joined, text) + text
    return joined


def _timestamp(seconds: float, decimal: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: list[Segment], decimal: str, numbered: bool) -> str:
    blocks = []
    for number, seg in enumerate(segments, start=1):
        times = f"{_timestamp(seg.start, decimal)} --> {_timestamp(seg.end, decimal)}"
        head = f"{number}\n" if numbered else ""
        blocks.append(f"{head}{times}\n{seg.text.strip()}\n")
    return "\n".join(blocks)


def srt(segments: list[Segment]) -> str:
    return _cues(segments, ",", numbered=True)


def vtt(segments: list[Segment]) -> str:
    return "WEBVTT\n\n" + _cues(segments, ".", numbered=False)


def verbose_json(result: TranscriptionResult) -> dict:
    body = result.model_dump(mode="json", exclude_none=True)
    for segment in body["segments"]:
        segment.pop("words", None)
    return body


def render(
    result: TranscriptionResult, response_format: str, logprobs: list[Logprob] | None = None
) -> web.Response:
    if response_format == "json":
        body = TextResult(text=result.text, logprobs=logprobs, usage=result.usage)
        return web.json_response(body.model_dump(mode="json", exclude_none=True))
    if response_format == "verbose_json":
        return web.json_response(verbose_json(result), dumps=json.dumps)
    if response_format == "srt":
        return web.Response(text=srt(result.segments), content_type="text/plain")
    if response_format == "vtt":
        return web.Response(text=vtt(result.segments), content_type="text/vtt")
    return web.Response(text=result.text, content_type="text/plain")

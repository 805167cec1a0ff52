"""What a route learns from the bytes it relays: LLM events and usage, TTS audio length."""

import json
import struct

from aistack_edge.observability.exchange import Exchange

PCM_BYTES_PER_S = 24000 * 2  # OpenAI's pcm: 24 kHz, 16-bit, mono


def note_events(record: Exchange, chunk: bytes) -> None:
    """Relayed SSE bytes: the first marks the first token; count the events; keep the
    usage of an event that carries one."""
    if record.first_token_s is None:
        record.first_token_s = record.elapsed()
    record.chunks += chunk.count(b"data:") - chunk.count(b"data: [DONE]")
    if b'"usage"' in chunk:
        for line in chunk.splitlines():
            if line.startswith(b"data:") and b'"usage"' in line:
                note_usage(record, line[5:])


def note_usage(record: Exchange, body: bytes) -> None:
    """Token counts from a completion's (or a final event's) `usage`, when it has one."""
    try:
        usage = json.loads(body).get("usage")
    except (ValueError, AttributeError):
        return
    if isinstance(usage, dict):
        record.prompt_tokens = _count(usage.get("prompt_tokens"))
        record.completion_tokens = _count(usage.get("completion_tokens"))


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def audio_seconds(content_type: str, head: bytes, size: int) -> float | None:
    """The duration of a TTS answer of `size` bytes, from its format: pcm, or a WAV
    whose header (in `head`) gives its byte rate; None for compressed formats."""
    if content_type in ("audio/pcm", "audio/l16"):
        return size / PCM_BYTES_PER_S
    if head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt " and len(head) >= 44:
        byte_rate = struct.unpack_from("<I", head, 28)[0]
        return (size - 44) / byte_rate if byte_rate else None
    return None

"""A TTS request's JSON body: the model it names, its `ref_audio` made safe to pass on."""

import json
from dataclasses import dataclass

from aistack_edge.bodies import parse_json
from aistack_edge.errors import malformed
from aistack_edge.tts.ref_audio import RefAudioPolicy

REF_AUDIO = "ref_audio"
STREAM_FORMATS = ("audio", "sse")


@dataclass(frozen=True)
class SpeechBody:
    raw: bytes
    """What to relay: the bytes as received, unless a `ref_audio` was inlined."""
    model: str | None
    characters: int | None = None
    """The length of its `input` text."""
    sse: bool = False
    """`stream_format: "sse"`: the edge streams the audio as events (`tts.sse`); the
    field is taken out of what is relayed, so the backend sends plain audio."""


def prepare(raw: bytes, policy: RefAudioPolicy) -> SpeechBody:
    """Parse and check the body; every `ref_audio` at any depth goes through `policy`.

    Blocking (it may read a reference clip): call it off the event loop."""
    changed = False

    def pairs(items: list[tuple[str, object]]) -> dict:
        nonlocal changed
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys):
            raise malformed("the JSON body repeats a key")  # a backend might keep the other
        fields = dict(items)
        if REF_AUDIO in fields:
            given = fields[REF_AUDIO]
            fields[REF_AUDIO] = policy.resolve(given)
            changed = changed or fields[REF_AUDIO] is not given
        return fields

    fields = parse_json(raw, object_pairs_hook=pairs)
    if not isinstance(fields, dict):
        raise malformed("the body must be a JSON object")
    model = fields.get("model")
    if model is not None and not isinstance(model, str):
        raise malformed("model must be a string")
    stream_format = fields.get("stream_format", "audio")
    if stream_format not in STREAM_FORMATS:
        raise malformed(f"stream_format must be one of {', '.join(STREAM_FORMATS)}")
    if "stream_format" in fields:
        del fields["stream_format"]  # the backend streams audio; events are the edge's
        changed = True
    if changed:
        raw = json.dumps(fields, ensure_ascii=False).encode()
    text = fields.get("input")
    characters = len(text) if isinstance(text, str) else None
    return SpeechBody(raw, model, characters, sse=stream_format == "sse")

"""`stream_format: "sse"` of /v1/audio/speech: the backend's audio as OpenAI's speech
stream events, made by the edge for every TTS model.

The events are those of OpenAI's API reference (`CreateSpeechResponseStreamEvent`):
`speech.audio.delta` with `audio`, base64 of the next bytes of the audio in the asked
`response_format`, and one last `speech.audio.done` with `usage`. A backend that breaks
off ends the stream with an `error` event instead (the envelope's body, as in the
transcription stream), never with `done`.
"""

import base64
import json

from aistack_contract.errors import AistackError
from aistack_contract.events import StreamError

CONTENT_TYPE = "text/event-stream"


def _event(data: dict) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def delta(audio: bytes) -> bytes:
    return _event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode()})


def done(characters: int | None) -> bytes:
    """The last event. aistack's TTS models count no tokens: the input counts one token
    a character (as aistack meters speech), the audio none."""
    tokens = characters or 0
    usage = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
    return _event({"type": "speech.audio.done", "usage": usage})


def error(failure: AistackError) -> bytes:
    return b"data: " + StreamError(error=failure.body).model_dump_json().encode() + b"\n\n"

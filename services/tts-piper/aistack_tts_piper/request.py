"""The body of POST /v1/audio/speech, checked: OpenAI's fields, this service's limits."""

import json
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aistack_contract.errors import AistackError, ErrorKind
from aistack_tts_piper import PROVIDER


class SpeechRequest(BaseModel):
    """OpenAI's speech request; other fields (instructions, extensions) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: float | None = Field(None, ge=0.25, le=4.0)
    stream_format: Literal["audio"] | None = None

    @property
    def format(self) -> str:
        return self.response_format or "mp3"


def _malformed(message: str) -> AistackError:
    return AistackError(ErrorKind.MALFORMED, message, PROVIDER)


async def read_speech_request(request: web.Request, max_chars: int) -> SpeechRequest:
    """The request's JSON body as a SpeechRequest, or the envelope error that says what is wrong."""
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed(f"the body is not valid JSON: {exc}") from None
    try:
        speech = SpeechRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise _malformed(f"{where}: {first['msg']}") from None
    if not speech.input.strip():
        raise _malformed("input is empty")
    if len(speech.input) > max_chars:
        raise AistackError(
            ErrorKind.OVERFLOW,
            f"input is {len(speech.input)} characters; the limit is {max_chars}",
            PROVIDER,
        )
    return speech

"""Every non-2xx answer as the aistack error envelope, whoever in the app made it.

llama.cpp's server answers OpenAI's error shape, FastAPI its `detail` shape; a pure
ASGI middleware rewrites both on the way out."""

import json
from http import HTTPStatus

from starlette.types import Message, Receive, Scope, Send

from aistack_contract.errors import AistackError, ErrorKind, kind_for_status
from aistack_llm_llamacpp import PROVIDER
from aistack_llm_llamacpp.asgi import HttpMiddleware


def error_of(status: int, body: bytes) -> AistackError:
    """The envelope for an error answer of llama.cpp's server or of FastAPI."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    message, code = _message_and_code(parsed)
    kind = ErrorKind.OVERFLOW if code == "context_length_exceeded" else kind_for_status(status)
    return AistackError(kind, message or HTTPStatus(status).phrase, PROVIDER)


def _message_and_code(parsed: object) -> tuple[str | None, str | None]:
    if not isinstance(parsed, dict):
        return None, None
    error, detail = parsed.get("error"), parsed.get("detail")
    if isinstance(error, dict):
        return str(error.get("message") or ""), error.get("code")
    if isinstance(detail, list):  # request validation: [{"loc": [...], "msg": ...}, ...]
        problems = (
            f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        )
        return "; ".join(problems), None
    if detail is not None:
        return str(detail), None
    return None, None


class EnvelopeMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        body = bytearray()

        async def send_enveloped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            error = error_of(start["status"], bytes(body))
            payload = json.dumps(error.envelope()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": error.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})

        await self.app(scope, receive, send_enveloped)

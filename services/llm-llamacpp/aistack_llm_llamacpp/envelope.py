"""Every non-2xx answer as the aistack error envelope, whoever in the app made it.

llama.cpp's server answers OpenAI's error shape, FastAPI its `detail` shape; a pure
ASGI middleware rewrites both on the way out."""

import json
import logging
from http import HTTPStatus

from starlette.types import Message, Receive, Scope, Send

from aistack_contract.errors import AistackError, ErrorKind, internal_error, kind_for_status
from aistack_llm_llamacpp import PROVIDER
from aistack_llm_llamacpp.asgi import HttpMiddleware

log = logging.getLogger(__name__)


def error_of(status: int, body: bytes, request_id: str | None = None) -> AistackError:
    """The envelope for an error answer of llama.cpp's server or of FastAPI. An internal
    error's text (an exception's, often) goes to the log; the client gets the request
    id to find it by."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    message, code = _message_and_code(parsed)
    kind = ErrorKind.OVERFLOW if code == "context_length_exceeded" else kind_for_status(status)
    if kind is ErrorKind.UNKNOWN:
        log.error("request %s failed with %d: %s", request_id, status, message or body[:500])
        return internal_error(PROVIDER, request_id)
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
        request_id = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1") or None

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
            error = error_of(start["status"], bytes(body), request_id)
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

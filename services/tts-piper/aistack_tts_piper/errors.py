"""The error envelope on every failed answer, and the one failure that gets none."""

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from aistack_contract.errors import AistackError, internal_error, kind_for_status
from aistack_tts_piper import PROVIDER

log = logging.getLogger(__name__)


class StreamBroken(Exception):
    """A failure after the audio began: the connection is dropped, not answered."""


def _message_of(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no such route: {request.method} {request.path}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    return exc.text or exc.reason


@web.middleware
async def envelope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AistackError as exc:
        return web.json_response(exc.envelope(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = AistackError(kind_for_status(exc.status), _message_of(exc, request), PROVIDER)
        return web.json_response(error.envelope(), status=exc.status)
    except (StreamBroken, ConnectionResetError):
        raise  # the audio had begun, or the client is gone: no answer is left to give
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        error = internal_error(PROVIDER, request.headers.get("X-Request-ID"))
        return web.json_response(error.envelope(), status=error.status)

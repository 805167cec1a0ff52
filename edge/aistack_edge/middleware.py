"""Request ids and the error envelope for every answer the edge gives."""

import json
import logging
import os
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from aistack_contract.errors import AistackError, ErrorKind
from aistack_edge.errors import RetryLater
from aistack_edge.observability import exchange
from aistack_service.http import route_error_message

log = logging.getLogger(__name__)

REQUEST_ID = "X-Request-ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9\-_.:]{1,128}")
_KIND_OF_HTTP_ERROR = {413: ErrorKind.OVERFLOW}


def request_id_of(request: web.Request) -> str:
    """The caller's X-Request-ID when it is safe to echo and pass on, else a new one
    (32 random hex digits)."""
    given = request.headers.get(REQUEST_ID, "")
    return given if _SAFE_ID.fullmatch(given) else os.urandom(16).hex()


def error_response(error: AistackError, status: int | None = None) -> web.Response:
    """The envelope; `status` overrides the kind's own (404 and 405 keep theirs)."""
    response = web.Response(
        body=json.dumps(error.envelope()).encode(),
        status=status or error.status,
        content_type="application/json",
        charset="utf-8",
    )
    if isinstance(error, RetryLater):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> AistackError:
    kind = _KIND_OF_HTTP_ERROR.get(exc.status, ErrorKind.MALFORMED)
    return AistackError(kind, route_error_message(exc, request))


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if "request_id" not in request:  # the observing middleware may have set it
        request["request_id"] = request_id_of(request)
    try:
        return await handler(request)
    except AistackError as error:
        return _closing_if_unread(request, error_response(_noted(request, error)))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _noted(request, _from_http_exception(exc, request))
        response = error_response(error, status=exc.status)
        for header in ("Allow", "WWW-Authenticate"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        error = AistackError(ErrorKind.UNKNOWN, "internal error in the gateway")
        return error_response(_noted(request, error))


def _closing_if_unread(request: web.Request, response: web.Response) -> web.Response:
    """`response`, which ends the connection when the request's body is still unread:
    a refusal before the body (a busy slot) must not be followed by reading it."""
    if request.body_exists and not request.content.is_eof():
        response.force_close()
    return response


def _noted(request: web.Request, error: AistackError) -> AistackError:
    """`error`, its kind noted on the request's exchange (errors by kind, admin page)."""
    exchange.of(request).error_kind = error.body.kind
    return error


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, streamed ones included, carries the request id."""
    response.headers[REQUEST_ID] = request.get("request_id") or request_id_of(request)

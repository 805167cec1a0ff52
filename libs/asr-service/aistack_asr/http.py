"""Middleware shared by every route: request ids, access log, the error envelope."""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry import trace

from aistack_asr.metrics import REQUESTS
from aistack_contract.errors import (
    AistackError,
    ErrorBody,
    ErrorEnvelope,
    ErrorKind,
    internal_error,
    kind_for_status,
)
from aistack_contract.telemetry import server_span

log = logging.getLogger("aistack_asr")

REQUEST_ID = "X-Request-ID"
PROVIDER = web.AppKey("provider", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TRACER = trace.get_tracer("aistack_asr")


def error_body(exc: BaseException, provider: str, request_id: str | None) -> ErrorBody:
    """The envelope body for any exception raised while serving request `request_id`:
    an unexpected one is named by the request id only (its details go to the log)."""
    if isinstance(exc, AistackError):
        return exc.body
    if isinstance(exc, MemoryError):
        return ErrorBody(kind=ErrorKind.OVERFLOW, provider=provider, message="out of memory")
    return internal_error(provider, request_id).body


def envelope_response(body: ErrorBody) -> web.Response:
    return web.json_response(ErrorEnvelope(error=body).model_dump(mode="json"), status=body.status)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Take or make the request id, answer errors with the envelope, log one line, count
    it; all in a server span, the child of the caller's `traceparent`."""
    route = request.match_info.route.resource
    name = route.canonical if route else "unmatched"
    with server_span(TRACER, f"{request.method} {name}", request.headers) as span:
        response = await _answer(request, handler)
        span.set_attribute("http.response.status_code", response.status)
    REQUESTS.labels(name, str(response.status)).inc()
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    provider = request.app[PROVIDER]
    started = time.monotonic()
    outcome = "?"
    try:
        response = await handler(request)
        outcome = str(response.status)
        return response
    except (asyncio.CancelledError, ConnectionError):
        outcome = "client gone"
        raise
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text or exc.reason
        response = envelope_response(
            ErrorBody(kind=kind_for_status(exc.status), provider=provider, message=message)
        )
        outcome = str(response.status)
        return response
    except Exception as exc:
        if not isinstance(exc, AistackError):
            log.exception("request %s failed", request_id)
        body = error_body(exc, provider, request_id)
        outcome = f"{body.status} {body.kind}: {body.message}"
        return envelope_response(body)
    finally:
        log.info(
            "%s %s %s -> %s in %.3f s",
            request_id, request.method, request.path, outcome, time.monotonic() - started,
        )  # fmt: skip


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer carries the request's id."""
    if REQUEST_ID in request:
        response.headers[REQUEST_ID] = request[REQUEST_ID]

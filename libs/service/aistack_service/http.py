"""The request context of every backend's HTTP app: the request id, one access-log line,
a server span (child of the caller's `traceparent`), the request count, and the error
envelope on every failed answer."""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import trace
from prometheus_client import Counter

from aistack_contract.errors import (
    AistackError,
    ErrorBody,
    ErrorEnvelope,
    ErrorKind,
    internal_error,
    kind_for_status,
)
from aistack_contract.jobs import JOBS_PATH, Jobs, wait_of
from aistack_contract.telemetry import exposition, server_span
from aistack_service.memory import out_of_memory

log = logging.getLogger("aistack_service")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = web.RequestKey("request_id", str)
"""The request's id: the caller's `X-Request-ID`, or one made here."""
PROVIDER = web.AppKey("provider", str)
JOBS = web.AppKey("jobs", Jobs)
"""The service's jobs by request id, each tracked until its compute has ended."""
TRACER = trace.get_tracer("aistack_service")


class StreamBroken(Exception):
    """A failure after the answer began: the connection is dropped, not answered."""


def requests_counter(prefix: str) -> Counter:
    """The `<prefix>_requests_total{route,status}` counter of one service."""
    return Counter(f"{prefix}_requests", "Requests by route and status", ["route", "status"])


def error_body(exc: BaseException, provider: str, request_id: str | None) -> ErrorBody:
    """The envelope body for any exception raised while serving request `request_id`:
    an unexpected one is named by the request id only (its details go to the log)."""
    if isinstance(exc, AistackError):
        return exc.body
    if out_of_memory(exc):
        return ErrorBody(kind=ErrorKind.OVERFLOW, provider=provider, message="out of memory")
    return internal_error(provider, request_id).body


def envelope_response(body: ErrorBody, status: int | None = None) -> web.Response:
    """The envelope; `status` overrides the kind's own (404 and 405 keep theirs)."""
    envelope = ErrorEnvelope(error=body).model_dump(mode="json")
    return web.json_response(envelope, status=status or body.status)


def create_app(
    provider: str,
    requests: Counter,
    jobs: Jobs,
    health: dict[str, str] | None = None,
    status: Callable[[], dict[str, Any]] | None = None,
    **options: object,
) -> web.Application:
    """An aiohttp app with the request context around every route, `X-Request-ID` on
    every answer, `GET /health` (`{"status": "ok"}` and `health`), `GET /metrics`,
    `GET /status` (`jobs`: how many run, what the fence reads; and `status()`'s fields,
    which may count `jobs` closer) and `DELETE /jobs/{id}` on `jobs`; `options` go to
    `web.Application`."""
    app = web.Application(middlewares=[request_context(requests)], **options)  # type: ignore[arg-type]
    app[PROVIDER] = provider
    app[JOBS] = jobs
    app.on_response_prepare.append(_echo_request_id)
    healthy = {"status": "ok", **(health or {})}

    async def answer_health(request: web.Request) -> web.Response:
        return web.json_response(healthy)

    async def answer_status(request: web.Request) -> web.Response:
        own = {"jobs": len(jobs.running()), "fence": jobs.fence}
        return web.json_response(own | (status() if status else {}))

    app.router.add_get("/health", answer_health)
    app.router.add_get("/status", answer_status)
    app.router.add_get("/metrics", metrics)
    app.router.add_delete(JOBS_PATH, stop_job)
    return app


def request_context(requests: Counter) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = route.canonical if route else "unmatched"
        with server_span(TRACER, f"{request.method} {name}", request.headers) as span:
            response = await _answer(request, handler)
            span.set_attribute("http.response.status_code", response.status)
        requests.labels(name, str(response.status)).inc()
        return response

    return middleware


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
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
    except StreamBroken:
        outcome = "dropped mid-answer"
        raise
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = route_error_message(exc, request)
        body = ErrorBody(kind=kind_for_status(exc.status), provider=provider, message=message)
        outcome = str(exc.status)
        return envelope_response(body, exc.status)
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


def route_error_message(exc: web.HTTPException, request: web.Request) -> str:
    """What aiohttp's own refusals say to the client: no such route, a method not
    allowed (with those that are), or the exception's text."""
    if exc.status == 404:
        return f"no such route: {request.method} {request.path}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    return exc.text or exc.reason


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    if REQUEST_ID in request:
        response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]


async def stop_job(request: web.Request) -> web.Response:
    """DELETE /jobs/{id}: cancel a job; answer once its compute stopped (or `?wait=` s)."""
    jobs = request.app[JOBS]
    state = await jobs.stop(request.match_info["job_id"], wait_of(request.query.get("wait")))
    return web.json_response(state.model_dump())


async def metrics(request: web.Request) -> web.Response:
    body, content_type = exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})

"""The observing middleware: a server span, the metrics, the access log and capture
for every request. It runs outside the envelope middleware, so it sees final statuses."""

import datetime as dt

from aiohttp import web
from aiohttp.typedefs import Handler

from aistack_contract.telemetry import server_span
from aistack_edge.bodies import READ_BODY
from aistack_edge.middleware import request_id_of
from aistack_edge.observability import Observability, exchange
from aistack_edge.observability.capture import Captured
from aistack_edge.observability.tracing import TRACER
from aistack_edge.state import OBSERVABILITY

_TEE = "aistack_capture_tee"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    obs = request.app[OBSERVABILITY]
    request["request_id"] = request_id = request_id_of(request)  # the first middleware
    record, token = exchange.begin(request, request_id)
    record.capture = obs.toggles.capture
    status, outcome = 499, exchange.DISCONNECT
    response: web.StreamResponse | None = None
    route = request.match_info.route.resource
    name = f"{request.method} {route.canonical if route else 'unmatched'}"
    try:
        with server_span(TRACER, name, request.headers) as span:
            try:
                response = await handler(request)
                status = response.status
            except web.HTTPException as exc:  # < 400: the envelope middleware passed it on
                status = exc.status
                raise
            finally:
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("aistack.request_id", request_id)
            gone = request.transport is None or request.transport.is_closing()
            if status < 500 or not gone:  # a 5xx on a closed connection: a write failed
                outcome = exchange.outcome_of(status, record)
            if record.capture:
                await _capture(obs, request, response)
        return response
    finally:
        exchange.end(token)
        if outcome == exchange.DISCONNECT and record.answered is not None:
            status = record.answered  # whole before the handler was cancelled
            outcome = exchange.outcome_of(status, record)
        obs.finish(request, record, status, outcome, _bytes_out(response))


def _bytes_out(response: web.StreamResponse | None) -> int:
    if response is None:
        return 0
    if isinstance(response, web.Response) and not response.prepared:
        return response.content_length or 0  # sent after the middleware returns
    return response.body_length


async def note_answered(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: note the status once the answer's last byte has left."""
    record = exchange.of(request)
    write_eof = response.write_eof

    async def noted(data: bytes = b"") -> None:
        await write_eof(data)
        record.answered = response.status

    response.write_eof = noted  # type: ignore[method-assign]


async def tee_for_capture(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: keep the first bytes a streamed answer writes, for capture."""
    record = exchange.of(request)
    obs = request.app[OBSERVABILITY]
    if not record.capture or isinstance(response, web.Response) or obs.capture is None:
        return
    kept = bytearray()
    request[_TEE] = kept
    write, cap = response.write, obs.capture.max_body_bytes

    async def tee(data: bytes | bytearray | memoryview) -> None:
        if len(kept) < cap:
            kept.extend(bytes(data[: cap - len(kept)]))
        await write(data)

    response.write = tee  # type: ignore[method-assign]


async def _capture(obs: Observability, request: web.Request, response: web.StreamResponse) -> None:
    cap = obs.capture.max_body_bytes if obs.capture is not None else 0
    if isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b""
        size = len(body)
    else:
        body, size = bytes(request.get(_TEE, b"")), response.body_length
    obs.keep(
        Captured(
            request_id=request["request_id"],
            ts=dt.datetime.now(dt.UTC),
            method=request.method,
            path=request.path_qs,
            status=response.status,
            request_headers=list(request.headers.items()),
            response_headers=list(response.headers.items()),
            request_body=(await _json_read(request))[:cap],
            request_size=request.content.total_bytes,
            response_body=body[:cap],
            response_size=size,
        )
    )


async def _json_read(request: web.Request) -> bytes:
    """The JSON body the handler read whole; nothing for any other. A body the handler
    did not read to its end is never read here: a request refused before its body must
    not wait for it, nor an upload streamed through be read twice. A non-JSON body (a
    voice upload, say) is recorded by its size only."""
    if not request.body_exists or request.can_read_body:
        return b""
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        return b""
    return request.get(READ_BODY, b"")  # what the handler read (bodies.read_bounded)

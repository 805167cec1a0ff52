"""/metrics and the server span of every request (child of the caller's `traceparent`)."""

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from aistack_contract.telemetry import exposition, server_span

TRACER = trace.get_tracer("aistack_tts_piper")
REQUESTS = Counter(
    "aistack_tts_piper_requests", "Requests by route and status", ["route", "status"]
)
CHARACTERS = Counter("aistack_tts_piper_characters", "Characters of input synthesized", ["voice"])
SYNTHESIS = Histogram(
    "aistack_tts_piper_synthesis_seconds",
    "Time from the request to the last byte of audio",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


@web.middleware
async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource
    name = route.canonical if route else "unmatched"
    with server_span(TRACER, f"{request.method} {name}", request.headers) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
    REQUESTS.labels(name, str(response.status)).inc()
    return response


async def metrics(request: web.Request) -> web.Response:
    body, content_type = exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})

"""Which web pages may use the edge: the Origin check, against cross-site requests.

Any page the user opens can send a form POST (a "simple" request: no CORS preflight) to
the edge on loopback or the LAN, or open its realtime WebSocket (which CORS does not
cover), and run workloads in the user's name. A browser names the page's origin in the
`Origin` header of both, so a request with an `Origin` is served only when it is the
edge's own (the admin page's: scheme, host and port the client reached, as a trusted
proxy forwards them) or one of `AISTACK_ALLOWED_ORIGINS` (`*`: any). Any other is
refused with 403 before its body is read. A request without `Origin` (curl, an SDK, a
server) is not a browser's cross-site request, and passes.

An allowed origin other than the edge's own also gets the CORS answers that let its page
read what it asked for: `Access-Control-Allow-Origin` on every answer, and a preflight
(`OPTIONS` with `Access-Control-Request-Method`) answered here.
"""

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from yarl import URL

from aistack_edge import peers
from aistack_edge.errors import quoted
from aistack_edge.state import SETTINGS

ANY = "*"
_PREFLIGHT_METHODS = "GET, POST, DELETE"
_ALLOWED = web.RequestKey("allowed_origin", str)
"""A request from an allowed origin other than the edge's own: that origin."""


def origin_of(url: str) -> str | None:
    """An origin as `scheme://host:port`, lower case, the port made explicit; None when
    `url` names none (`null`, a bare word)."""
    try:
        parsed = URL(url.strip())
    except ValueError:
        return None
    if not parsed.scheme or not parsed.host or parsed.port is None:
        return None
    host = parsed.host.lower().rstrip(".")
    host = f"[{host}]" if ":" in host else host
    return f"{parsed.scheme.lower()}://{host}:{parsed.port}"


def own_origin(request: web.Request) -> str | None:
    """The origin the client reached: as a trusted proxy says (X-Forwarded-Proto and
    X-Forwarded-Host), else this connection's scheme and Host."""
    scheme, host = request.scheme, request.headers.get(hdrs.HOST, "")
    if peers.via_trusted_proxy(request, request.app[SETTINGS].trusted_proxies):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        scheme = proto or scheme
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip() or host
    return origin_of(f"{scheme}://{host}")


def is_own(request: web.Request, origin: str) -> bool:
    """Whether `origin` (an Origin header) is the edge's own."""
    given = origin_of(origin)
    return given is not None and given == own_origin(request)


@web.middleware
async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or is_own(request, origin):
        return await handler(request)
    allowed = request.app[SETTINGS].allowed_origins
    if ANY not in allowed and origin_of(origin) not in allowed:
        raise web.HTTPForbidden(
            text=f"cross-site request refused: the origin {quoted(origin)} is neither the "
            "edge's own nor one of AISTACK_ALLOWED_ORIGINS"
        )
    request[_ALLOWED] = origin
    if (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
    ):
        response = web.Response(status=204)
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = _PREFLIGHT_METHODS
        asked = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        if asked:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = asked
        response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
        return response
    return await handler(request)


async def allow_origin(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: an allowed origin's page may read the answer (streamed
    ones too, whose headers leave before the handler returns)."""
    origin = request.get(_ALLOWED)
    if origin is not None:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "X-Request-ID, Retry-After"
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)

"""Who may use the admin page and API, and /metrics through a proxy.

- `AISTACK_ADMIN_TOKEN` set: the API needs `Authorization: Bearer <token>` (401 otherwise);
  the page itself holds no state and asks for the token.
- No token (unset or empty): the page and the reads are open only when the edge listens on
  loopback and the client is on this machine (`aistack_edge.peers`: the real peer, or the
  client a trusted proxy forwarded); every change is refused (403).
- `/metrics`: open to direct clients (a scraper); a proxied request needs the token, or,
  with none set, a local client.

A change is a POST with a JSON body (which an HTML form can't send), from the edge's own
origin (scheme, host and port) when the browser names one, carrying the token in a header:
a header no other site can make a browser send, so it is the change's CSRF token too.
"""

import hmac

from aiohttp import web

from aistack_edge import peers
from aistack_edge.bodies import parse_json, read_bounded
from aistack_edge.errors import malformed, quoted
from aistack_edge.origins import is_own
from aistack_edge.state import SETTINGS

NO_TOKEN = "admin changes are disabled: AISTACK_ADMIN_TOKEN is not set on the edge"


def admit_page(request: web.Request) -> None:
    """The page and its assets: with no token, only for a local client of a loopback edge."""
    settings = request.app[SETTINGS]
    if settings.admin_token is not None:
        return
    if not peers.is_loopback(settings.host):
        raise web.HTTPForbidden(
            text=f"the admin page is off: the edge listens on {settings.host}, beyond "
            "loopback, and AISTACK_ADMIN_TOKEN is not set"
        )
    if not peers.is_local(request, settings.trusted_proxies):
        raise web.HTTPForbidden(
            text="the admin page is open only to this machine's own clients while "
            "AISTACK_ADMIN_TOKEN is not set"
        )


def admit_metrics(request: web.Request) -> None:
    """/metrics: a direct request passes; one through a proxy needs the admin token (or,
    with none set, a local client behind a trusted proxy)."""
    if not peers.forwarded(request):
        return
    settings = request.app[SETTINGS]
    if settings.admin_token is not None:
        _bearer(request)
    elif not peers.is_local(request, settings.trusted_proxies):
        raise web.HTTPForbidden(
            text="/metrics through a proxy needs AISTACK_ADMIN_TOKEN, which is not set"
        )


def admit_read(request: web.Request) -> None:
    admit_page(request)
    _bearer(request)


async def admitted_change(request: web.Request) -> dict:
    """The JSON object a permitted change carries; raises for any other request."""
    admit_page(request)
    origin = request.headers.get("Origin")
    if origin is not None and not is_own(request, origin):  # an allowed origin is not enough
        raise web.HTTPForbidden(text=f"cross-site request refused (Origin {quoted(origin)})")
    if request.app[SETTINGS].admin_token is None:
        raise web.HTTPForbidden(text=NO_TOKEN)
    _bearer(request)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the change as application/json")
    body = await read_bounded(request, request.app[SETTINGS].max_json_bytes, "the change")
    change = parse_json(body)
    if not isinstance(change, dict):
        raise malformed("the body must be a JSON object")
    return change


def _bearer(request: web.Request) -> None:
    """With a token configured, the request must carry it."""
    token = request.app[SETTINGS].admin_token
    if token is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise web.HTTPUnauthorized(
            text="send Authorization: Bearer <AISTACK_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="aistack admin"'},
        )

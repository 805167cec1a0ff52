"""Who may use the admin page and API.

- The edge listens beyond loopback and `AISTACK_ADMIN_TOKEN` is not set: every admin
  route is refused (403), the page included.
- A token is set: the API needs `Authorization: Bearer <token>` (401 otherwise); the
  page itself holds no state and asks for the token.
- No token, on loopback: the page and the reads are open, every change is refused (403).

A change is a POST with a JSON body (which an HTML form can't send), from the edge's own
origin when the browser names one, carrying the token in a header: a header no other
site can make a browser send, so it is the change's CSRF token too.
"""

import hmac
import ipaddress

from aiohttp import web

from aistack_edge.errors import malformed
from aistack_edge.state import SETTINGS

NO_TOKEN = "admin changes are disabled: AISTACK_ADMIN_TOKEN is not set on the edge"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admit_page(request: web.Request) -> None:
    """The page and its assets: refused only beyond loopback with no token."""
    settings = request.app[SETTINGS]
    if settings.admin_token is None and not is_loopback(settings.host):
        raise web.HTTPForbidden(
            text=f"the admin page is off: the edge listens on {settings.host}, beyond "
            "loopback, and AISTACK_ADMIN_TOKEN is not set"
        )


def admit_read(request: web.Request) -> None:
    admit_page(request)
    _bearer(request)


async def admitted_change(request: web.Request) -> dict:
    """The JSON object a permitted change carries; raises for any other request."""
    admit_page(request)
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text=f"cross-site request refused (Origin {origin})")
    if request.app[SETTINGS].admin_token is None:
        raise web.HTTPForbidden(text=NO_TOKEN)
    _bearer(request)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the change as application/json")
    try:
        change = await request.json()
    except ValueError as exc:
        raise malformed(f"the body is not JSON: {exc}") from None
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

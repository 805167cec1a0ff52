"""GET and POST /admin/api/observability: what is recorded, switched at run time.

Both need `Authorization: Bearer <AISTACK_ADMIN_TOKEN>`. With no token configured the
state can be read but never changed. A change must be a JSON body (which an HTML form
can't send) and, when the browser names an Origin, come from the edge's own origin.
"""

import hmac

from aiohttp import web

from aistack_edge.errors import malformed
from aistack_edge.state import OBSERVABILITY, SETTINGS

routes = web.RouteTableDef()


def _authorize(request: web.Request, changing: bool) -> None:
    token = request.app[SETTINGS].admin_token
    if token is None:
        if changing:
            raise web.HTTPForbidden(
                text="admin changes are disabled: AISTACK_ADMIN_TOKEN is not set on the edge"
            )
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise web.HTTPUnauthorized(
            text="send Authorization: Bearer <AISTACK_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="aistack admin"'},
        )


def _same_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text=f"cross-site request refused (Origin {origin})")


@routes.get("/admin/api/observability")
async def get_observability(request: web.Request) -> web.Response:
    _authorize(request, changing=False)
    return web.json_response(request.app[OBSERVABILITY].state())


@routes.post("/admin/api/observability")
async def set_observability(request: web.Request) -> web.Response:
    _same_origin(request)
    _authorize(request, changing=True)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the toggles as application/json")
    try:
        changes = await request.json()
    except ValueError as exc:
        raise malformed(f"the body is not JSON: {exc}") from None
    if not isinstance(changes, dict):
        raise malformed('the body must be a JSON object, e.g. {"capture": true}')
    obs = request.app[OBSERVABILITY]
    obs.switch(changes)
    return web.json_response(obs.state())

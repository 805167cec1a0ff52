"""GET /admin: the admin page and playground, plain HTML, CSS and JavaScript modules
shipped inside the edge package (no CDN, no build step)."""

from pathlib import Path

from aiohttp import web

from aistack_edge.admin.guard import admit_page

routes = web.RouteTableDef()

_STATIC = Path(__file__).parent.parent / "admin" / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_ASSETS = {p.name: p for p in _STATIC.iterdir() if p.suffix in (".js", ".css")}
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Only the edge's own scripts and styles; audio as blob: URLs made by the page.
_PAGE_HEADERS = {
    **_HEADERS,
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}


@routes.get("/admin")
async def page(request: web.Request) -> web.FileResponse:
    admit_page(request)
    return _file(_STATIC / "index.html", _PAGE_HEADERS)


@routes.get("/admin/")
async def page_slash(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin")


@routes.get("/admin/static/{name}")
async def asset(request: web.Request) -> web.FileResponse:
    admit_page(request)
    path = _ASSETS.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    return _file(path, _HEADERS)


def _file(path: Path, headers: dict[str, str]) -> web.FileResponse:
    return web.FileResponse(path, headers={**headers, "Content-Type": _TYPES[path.suffix]})

"""GET /health: liveness of the edge itself."""

from aiohttp import web

from aistack_edge import __version__

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})

"""GET /openapi.json: the edge's API as an OpenAPI 3.1 document."""

from aiohttp import web

from aistack_edge.openapi import document

routes = web.RouteTableDef()


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())

"""GET /v1/models: the capability inventory, as of right now."""

from aiohttp import web

from aistack_edge.errors import quoted
from aistack_edge.state import CATALOG

routes = web.RouteTableDef()


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    cards = await request.app[CATALOG].cards()
    return web.json_response({"object": "list", "data": [card.public() for card in cards]})


@routes.get("/v1/models/{model_id:.+}")
async def get_model(request: web.Request) -> web.Response:
    wanted = request.match_info["model_id"]
    for card in await request.app[CATALOG].cards():
        if card.id == wanted:
            return web.json_response(card.public())
    raise web.HTTPNotFound(text=f"no model {quoted(wanted)} is being served right now")

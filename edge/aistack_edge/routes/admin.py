"""The admin API: GET /admin/api/status, POST /admin/api/evict, GET and POST
/admin/api/observability (what is recorded, switched at run time), GET
/admin/api/models (each backend's weights) and POST /admin/api/models/pull (a backend
fetches one, its progress streamed as NDJSON). Who may call what:
`aistack_edge.admin.guard`."""

from aiohttp import web

from aistack_edge.admin.actions import evict
from aistack_edge.admin.guard import admit_read, admitted_change
from aistack_edge.admin.status import snapshot
from aistack_edge.admin.weights import pull, weights
from aistack_edge.errors import malformed
from aistack_edge.state import OBSERVABILITY

routes = web.RouteTableDef()


@routes.get("/admin/api/status")
async def get_status(request: web.Request) -> web.Response:
    admit_read(request)
    return web.json_response(await snapshot(request.app))


@routes.post("/admin/api/evict")
async def post_evict(request: web.Request) -> web.Response:
    change = await admitted_change(request)
    url = change.get("backend")
    if not isinstance(url, str):
        raise malformed('name the backend by its URL: {"backend": "http://..."}')
    return web.json_response({"backend": url, "evicted": await evict(request.app, url)})


@routes.get("/admin/api/observability")
async def get_observability(request: web.Request) -> web.Response:
    admit_read(request)
    return web.json_response(request.app[OBSERVABILITY].state())


@routes.post("/admin/api/observability")
async def set_observability(request: web.Request) -> web.Response:
    changes = await admitted_change(request)
    obs = request.app[OBSERVABILITY]
    obs.switch(changes)
    return web.json_response(obs.state())


@routes.get("/admin/api/models")
async def get_models(request: web.Request) -> web.Response:
    admit_read(request)
    return web.json_response({"backends": await weights(request.app)})


@routes.post("/admin/api/models/pull")
async def post_models_pull(request: web.Request) -> web.StreamResponse:
    change = await admitted_change(request)
    begun = await pull(request.app, change.get("backend"), change.get("repo"))
    if (refused := await begun.refusal()) is not None:
        return refused
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    async for line in begun.lines():
        await response.write(line)
    await response.write_eof()
    return response

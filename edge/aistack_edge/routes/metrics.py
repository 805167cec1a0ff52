"""GET /metrics: the edge's metrics in Prometheus text format (who may read them through a
proxy: `aistack_edge.admin.guard.admit_metrics`)."""

from aiohttp import web

from aistack_contract.telemetry import exposition
from aistack_edge.admin.guard import admit_metrics
from aistack_edge.state import CATALOG, OBSERVABILITY

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    admit_metrics(request)
    await request.app[CATALOG].entries()  # backend up/down as of a probe no older than the cache
    body, content_type = exposition(request.app[OBSERVABILITY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})

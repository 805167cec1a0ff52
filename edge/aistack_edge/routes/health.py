"""GET /health: liveness of the edge, with the state of what it depends on.
GET /health/ready: readiness, for an orchestrator's probe.

/health answers `ok` while the edge serves, whatever its backends do (a liveness probe
that failed on a backend's account would restart a healthy edge); the extra fields tell
the truth about them: each configured backend as of the catalog's latest probe, and the
lease store. It never waits on a backend. /health/ready answers 503 while some configured
capability has no backend up, or the lease store is unreachable or settling after it
started empty (docs/architecture.md): then requests would fail.
"""

import asyncio

from aiohttp import web

from aistack_contract.errors import AistackError
from aistack_edge import __version__
from aistack_edge.errors import unavailable
from aistack_edge.slot import MemoryStore
from aistack_edge.state import CATALOG, SLOT

routes = web.RouteTableDef()

STORE_TIMEOUT_S = 1.0
# A first probe started by /health itself, referenced until it ends.
_probes: set[asyncio.Task] = set()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    states = catalog.backend_states()
    if not states and not _probes:
        # Nothing probed yet (nothing asked for models since start): probe in the background,
        # so that the next call can tell.
        task = asyncio.create_task(catalog.entries())
        _probes.add(task)
        task.add_done_callback(_probes.discard)
    body = {
        "status": "ok",
        "version": __version__,
        "backends": _backends(states),
        "lease_store": await _lease_store(request.app),
    }
    return web.json_response(body)


@routes.get("/health/ready")
async def ready(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    await catalog.entries()  # a probe no older than the models cache, bounded by its timeout
    states = catalog.backend_states()
    store = await _lease_store(request.app)
    problems = [
        f"no {capability} backend is up ({', '.join(urls)})"
        for capability, urls in _down_capabilities(states).items()
    ]
    if not store["reachable"]:
        problems.append("the lease store (Redis) is unreachable")
    elif (settling_s := await _settling_s(request.app)) > 0:
        problems.append(
            f"the lease store has just started empty: no request may take the GPU slot "
            f"for {settling_s:.1f} s more, so that a holder whose lease it lost takes it back"
        )
    if problems:
        raise unavailable("not ready: " + "; ".join(problems))
    body = {"status": "ready", "backends": _backends(states), "lease_store": store}
    return web.json_response(body)


def _backends(states: list) -> list[dict]:
    return [{"capability": cap, "url": url, "up": up} for cap, url, up in states]


def _down_capabilities(states: list) -> dict[str, list[str]]:
    """Each configured capability with no backend up: its backends' URLs."""
    by_capability: dict[str, list[tuple[str, bool]]] = {}
    for capability, url, up in states:
        by_capability.setdefault(capability, []).append((url, up))
    return {
        capability: [url for url, _ in backends]
        for capability, backends in by_capability.items()
        if not any(up for _, up in backends)
    }


async def _settling_s(app: web.Application) -> float:
    try:
        return await asyncio.wait_for(app[SLOT].settling_s(), STORE_TIMEOUT_S)
    except (AistackError, TimeoutError):
        return 0.0  # unreachable: said so already


async def _lease_store(app: web.Application) -> dict:
    """Where the GPU slot lease lives, and whether it answers a read within a second."""
    store = app[SLOT].store
    if isinstance(store, MemoryStore):
        return {"kind": "memory", "reachable": True}
    try:
        await asyncio.wait_for(store.current(), STORE_TIMEOUT_S)
    except (AistackError, TimeoutError):
        return {"kind": "redis", "reachable": False}
    return {"kind": "redis", "reachable": True}

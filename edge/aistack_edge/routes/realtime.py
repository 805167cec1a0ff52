"""GET /v1/realtime?intent=transcription: a live transcription session over WebSocket
(OpenAI's Realtime API; see docs/realtime.md)."""

from aiohttp import WSCloseCode, web

from aistack_edge.errors import malformed
from aistack_edge.realtime.session import Session
from aistack_edge.state import SETTINGS

routes = web.RouteTableDef()

OPEN = web.AppKey("realtime_open", set[web.WebSocketResponse])
"""The sockets of the sessions open now (create_app sets it up)."""

# How often the edge pings a quiet client: a peer gone without a close frame (a dead
# network) ends its session within two of these.
_HEARTBEAT_S = 30.0


@routes.get("/v1/realtime")
async def realtime(request: web.Request) -> web.StreamResponse:
    intent = request.query.get("intent")
    if intent != "transcription":
        raise malformed(
            f"intent {intent!r}: this server runs transcription sessions only; connect to "
            "/v1/realtime?intent=transcription"
        )
    max_bytes = int(request.app[SETTINGS].realtime_max_message_mb * 2**20)
    ws = web.WebSocketResponse(heartbeat=_HEARTBEAT_S, max_msg_size=max_bytes)
    if not ws.can_prepare(request).ok:
        raise malformed("/v1/realtime is a WebSocket: send an Upgrade: websocket request")
    await ws.prepare(request)
    request.app[OPEN].add(ws)
    try:
        await Session(request, ws).serve()
    finally:
        request.app[OPEN].discard(ws)
    return ws


async def close_sessions(app: web.Application) -> None:
    """on_shutdown: every open session is closed as the server goes away (1001), its
    utterance in work stopped as at a hang-up: a stopping edge waits on no client."""
    for ws in list(app[OPEN]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the server is shutting down")

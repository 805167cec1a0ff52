"""GET /v1/realtime?intent=transcription: a live transcription session over WebSocket
(OpenAI's Realtime API; see docs/realtime.md)."""

from aiohttp import WSCloseCode, web

from aistack_edge.errors import malformed, quoted
from aistack_edge.realtime import bounds
from aistack_edge.realtime.events import error_event
from aistack_edge.realtime.session import Session

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
            f"intent {quoted(intent)}: this server runs transcription sessions only; connect to "
            "/v1/realtime?intent=transcription"
        )
    # No permessage-deflate: a compressed message is inflated on the event loop (and
    # base64 audio, nearly all of what a session sends, hardly compresses).
    ws = web.WebSocketResponse(
        heartbeat=_HEARTBEAT_S, max_msg_size=bounds.max_message_bytes(request), compress=False
    )
    if not ws.can_prepare(request).ok:
        raise malformed("/v1/realtime is a WebSocket: send an Upgrade: websocket request")
    client = bounds.client_of(request)  # before the peer may be gone
    await ws.prepare(request)
    if (refused := bounds.refusal(request, client)) is not None:
        # Said in the protocol's own terms: an `error` event, then 1013 (try again later).
        await ws.send_json(error_event(refused))
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many sessions")
        return ws
    request.app[OPEN].add(ws)
    try:
        with bounds.counted(request, client):
            await Session(request, ws).serve()
    finally:
        request.app[OPEN].discard(ws)
    return ws


async def close_sessions(app: web.Application) -> None:
    """on_shutdown: every open session is closed as the server goes away (1001), its
    utterance in work stopped as at a hang-up: a stopping edge waits on no client."""
    for ws in list(app[OPEN]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the server is shutting down")

"""GET /v1/realtime?intent=transcription: a live transcription session over WebSocket
(OpenAI's Realtime API; see docs/realtime.md), and POST /v1/realtime/client_secrets:
the ephemeral secrets a web page connects with."""

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aistack_edge.bodies import parse_json, read_json_body
from aistack_edge.errors import invalid, malformed, quoted
from aistack_edge.realtime import bounds, secrets
from aistack_edge.realtime.events import SessionConfig, error_event, new_id
from aistack_edge.realtime.session import Session, check_model
from aistack_edge.state import SETTINGS

routes = web.RouteTableDef()

OPEN = web.AppKey("realtime_open", set[web.WebSocketResponse])
"""The sockets of the sessions open now (create_app sets it up)."""
SECRETS = web.AppKey("realtime_secrets", secrets.SecretStore)

# How often the edge pings a quiet client: a peer gone without a close frame (a dead
# network) ends its session within two of these.
_HEARTBEAT_S = 30.0

# The subprotocol the edge selects in the handshake: a browser that offered protocols
# fails a handshake that selects none. A key offered beside it is never selected (never
# sent back).
SUBPROTOCOL = "realtime"
KEY_PROTOCOL = "openai-insecure-api-key."


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
        heartbeat=_HEARTBEAT_S,
        max_msg_size=bounds.max_message_bytes(request),
        compress=False,
        protocols=(SUBPROTOCOL,),
    )
    if not ws.can_prepare(request).ok:
        raise malformed("/v1/realtime is a WebSocket: send an Upgrade: websocket request")
    client = bounds.client_of(request)  # before the peer may be gone
    if (refused := bounds.refusal(request, client)) is not None:
        # Said in the protocol's own terms, before any secret is redeemed: an `error`
        # event, then 1013 (try again later).
        await ws.prepare(request)
        await ws.send_json(error_event(refused))
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many sessions")
        return ws
    with bounds.counted(request, client):  # from the check on: no await lets one more past
        granted = await _granted(request)  # after the checks: a refused upgrade keeps its secret
        await ws.prepare(request)
        request.app[OPEN].add(ws)
        try:
            await Session(request, ws, granted).serve()
        finally:
            request.app[OPEN].discard(ws)
    return ws


def _offered_key(request: web.Request) -> str | None:
    """The key the client offered: as a subprotocol (a browser), else as a bearer token."""
    for header in request.headers.getall("Sec-WebSocket-Protocol", ()):
        for protocol in header.split(","):
            if (protocol := protocol.strip()).startswith(KEY_PROTOCOL):
                return protocol.removeprefix(KEY_PROTOCOL)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def _granted(request: web.Request) -> tuple[str, SessionConfig] | None:
    """The session a client secret opens; None for a connection without one (the
    deployment authenticates those: the edge checks no other key). A secret that is
    unknown, expired or used is refused (401)."""
    key = _offered_key(request)
    if key is None or not key.startswith(secrets.PREFIX):
        return None
    grant = await secrets.redeem(request.app[SECRETS], key)
    if grant is None:
        raise web.HTTPUnauthorized(
            text="the client secret is unknown, expired or already used: mint another "
            "(POST /v1/realtime/client_secrets)",
            headers={"WWW-Authenticate": 'Bearer realm="aistack"'},
        )
    return grant["id"], SessionConfig.model_validate(grant["session"])


class _ExpiresAfter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anchor: Literal["created_at"] = "created_at"
    seconds: int = Field(600, ge=10, le=7200)


class _SecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_after: _ExpiresAfter = _ExpiresAfter()
    session: dict[str, Any] = {"type": "transcription"}


@routes.post("/v1/realtime/client_secrets")
async def client_secrets(request: web.Request) -> web.Response:
    """A secret for one transcription session with the settings given (OpenAI's shape:
    `value`, `expires_at`, `session`). Whoever may call this route may open sessions:
    the deployment's authentication guards it as any other."""
    body = parse_json(await read_json_body(request, request.app[SETTINGS].max_json_bytes))
    if not isinstance(body, dict):
        raise malformed("the body must be a JSON object")
    try:
        asked = _SecretRequest.model_validate(body)
    except ValidationError as exc:
        raise malformed(invalid(exc, "the body")) from exc
    if asked.session.get("type") != "transcription":
        raise malformed(
            f"session.type {quoted(asked.session.get('type'))}: this server mints secrets for "
            'transcription sessions only (type "transcription")'
        )
    config = SessionConfig().updated(asked.session)
    await check_model(request.app, config)
    session_id, ttl_s = new_id("sess"), asked.expires_after.seconds
    grant = {"id": session_id, "session": config.model_dump(mode="json")}
    value = await secrets.mint(request.app[SECRETS], grant, ttl_s)
    return web.json_response(
        {
            "value": value,
            "expires_at": int(time.time()) + ttl_s,
            "session": config.ga(session_id),
        },
        headers={"Cache-Control": "no-store"},
    )


async def client_secret_store(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the store of minted secrets, Redis's when the edge has one."""
    app[SECRETS] = secrets.store_for(app[SETTINGS].redis_url)
    yield
    await app[SECRETS].close()


async def close_sessions(app: web.Application) -> None:
    """on_shutdown: every open session is closed as the server goes away (1001), its
    utterance in work stopped as at a hang-up: a stopping edge waits on no client."""
    for ws in list(app[OPEN]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the server is shutting down")

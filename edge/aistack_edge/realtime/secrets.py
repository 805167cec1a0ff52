"""Ephemeral client secrets: what a web page connects to /v1/realtime with.

A browser cannot set `Authorization` on a WebSocket, and a page must not hold a
long-lived key. So, as with OpenAI's `POST /v1/realtime/client_secrets`, the page's own
server (or the admin page, through the deployment's authentication) mints a secret for
one session: short-lived, used once, carrying the session's settings. The page offers it
as the subprotocol `openai-insecure-api-key.<secret>` beside `realtime` (or as a bearer
token, where it can set one).

Only a hash of each secret is kept (a leaked store holds nothing to connect with): in
Redis when the edge has one, so that any replica redeems what another minted, else in
this process. A redeemed secret is deleted in the same step (GETDEL): it opens one
session, however many sockets race with it.
"""

import hashlib
import json
import secrets
import time
from typing import Any, Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from aistack_edge.errors import unavailable

PREFIX = "ek_"
_KEY = "aistack:realtime-secret:"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SecretStore(Protocol):
    async def put(self, digest: str, grant: dict[str, Any], ttl_s: int) -> None: ...
    async def take(self, digest: str) -> dict[str, Any] | None: ...
    async def close(self) -> None: ...


class RedisSecrets:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)

    async def put(self, digest: str, grant: dict[str, Any], ttl_s: int) -> None:
        try:
            await self._redis.set(_KEY + digest, json.dumps(grant), ex=ttl_s)
        except RedisError as exc:
            raise unavailable(f"Redis, which keeps client secrets, is unreachable: {exc}") from exc

    async def take(self, digest: str) -> dict[str, Any] | None:
        try:
            held = await self._redis.getdel(_KEY + digest)
        except RedisError as exc:
            raise unavailable(f"Redis, which keeps client secrets, is unreachable: {exc}") from exc
        return None if held is None else json.loads(held)

    async def close(self) -> None:
        await self._redis.aclose()


class MemorySecrets:
    """This process's secrets (the embedded edge, without Redis)."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[float, dict[str, Any]]] = {}

    async def put(self, digest: str, grant: dict[str, Any], ttl_s: int) -> None:
        now = time.monotonic()
        # Forget the expired ones: the store is bounded by what is live.
        self._held = {d: held for d, held in self._held.items() if held[0] > now}
        self._held[digest] = (now + ttl_s, grant)

    async def take(self, digest: str) -> dict[str, Any] | None:
        held = self._held.pop(digest, None)
        if held is None or held[0] <= time.monotonic():
            return None
        return held[1]

    async def close(self) -> None:
        self._held.clear()


def store_for(redis_url: str | None) -> SecretStore:
    return RedisSecrets(redis_url) if redis_url else MemorySecrets()


async def mint(store: SecretStore, grant: dict[str, Any], ttl_s: int) -> str:
    """A new secret for `grant` (the session it opens), valid for `ttl_s` seconds."""
    value = PREFIX + secrets.token_urlsafe(24)
    await store.put(_digest(value), grant, ttl_s)
    return value


async def redeem(store: SecretStore, value: str) -> dict[str, Any] | None:
    """The grant of a live, unused secret, which is used up by this; else None."""
    return await store.take(_digest(value))

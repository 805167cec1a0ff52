"""Where the lease lives: Redis (shared by every edge replica) or this process's memory.

A lease is a key holding a unique token with a TTL. Every write compares the token
first, so an edge can only renew or release the lease it holds.
"""

import time
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from aistack_edge.errors import SlotStoreDown

# Renew our lease; or take it again where it is gone (Redis restarted empty, or the
# TTL ran out while Redis was away): its holder is still at work, so nobody else may
# take it. Only another holder's token means the lease is lost.
_RENEW = """
local held = redis.call('get', KEYS[1])
if held == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not held then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaseStore(Protocol):
    async def try_set(self, token: str, ttl_ms: int) -> bool: ...
    async def renew(self, token: str, ttl_ms: int) -> bool:
        """Extend the lease `token` holds, or take it again if nobody holds it; False
        when another token holds it."""
        ...

    async def release(self, token: str) -> bool: ...
    async def current(self) -> str | None: ...
    async def close(self) -> None: ...


class RedisStore:
    """The lease as a Redis key: SET NX PX, compare-and-PEXPIRE (or take again), compare-and-DEL."""

    def __init__(self, url: str, key: str, retry_after_s: int) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._key = key
        self._retry_after_s = retry_after_s
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    async def _call(self, coro):
        try:
            return await coro
        except RedisError as exc:
            raise SlotStoreDown(str(exc) or type(exc).__name__, self._retry_after_s) from exc

    async def try_set(self, token: str, ttl_ms: int) -> bool:
        return bool(await self._call(self._client.set(self._key, token, nx=True, px=ttl_ms)))

    async def renew(self, token: str, ttl_ms: int) -> bool:
        return bool(await self._call(self._renew(keys=[self._key], args=[token, ttl_ms])))

    async def release(self, token: str) -> bool:
        return bool(await self._call(self._release(keys=[self._key], args=[token])))

    async def current(self) -> str | None:
        value = await self._call(self._client.get(self._key))
        return value.decode() if value is not None else None

    async def close(self) -> None:
        await self._client.aclose()


class MemoryStore:
    """The same lease in this process, for one edge with no Redis (the embedded mode)."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires = 0.0

    def _live(self) -> str | None:
        if self._token is not None and time.monotonic() >= self._expires:
            self._token = None
        return self._token

    async def try_set(self, token: str, ttl_ms: int) -> bool:
        if self._live() is not None:
            return False
        self._token, self._expires = token, time.monotonic() + ttl_ms / 1000
        return True

    async def renew(self, token: str, ttl_ms: int) -> bool:
        if self._live() not in (token, None):
            return False
        self._token, self._expires = token, time.monotonic() + ttl_ms / 1000
        return True

    async def release(self, token: str) -> bool:
        if self._live() != token:
            return False
        self._token = None
        return True

    async def current(self) -> str | None:
        return self._live()

    async def close(self) -> None:
        return None

"""Where the lease lives: Redis (shared by every edge replica) or this process's memory.

A lease is a key holding a unique token with a TTL. Every write compares the token
first, so an edge can only renew or release the lease it holds.
"""

import time
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from aistack_edge.errors import SlotSettling, SlotStoreDown

# Renew our lease; or take it again where it is gone (Redis restarted empty, the key
# deleted, or the TTL ran out while Redis was away): its holder is still at work, so
# nobody else may take it. Only another holder's token means the lease is lost. Each
# write keeps the lease's trace (KEYS[5], below) beside it, with the same TTL.
_RENEW = """
local held = redis.call('get', KEYS[1])
if held == ARGV[1] then
  redis.call('set', KEYS[5], ARGV[1], 'PX', ARGV[2])
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not held then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('set', KEYS[5], ARGV[1], 'PX', ARGV[2])
  redis.call('set', KEYS[2], '1')
  return 1
end
return 0
"""

STORE_KEPT = "aistack:lease-store:kept"
"""Set (no TTL) in a Redis that has held leases: its absence means the store is new,
or restarted empty. Whoever starts a new Redis for aistack may set it: no lease can be
lost in a store that never held one."""
STORE_SETTLING = "aistack:lease-store:settling"

# A store that lost its state: with no marker (Redis restarted empty, or new) and an
# uptime under one TTL, a lease may have vanished whose holder is still at work and will
# take it back at its next renewal. For one TTL from the restart nobody else may take the
# slot: `settling()` is the time left of it (ms, at most 0 when none). A long-running
# Redis without the marker (flushed by hand) is trusted: any lost lease is older than its
# TTL. KEYS: the lease, the marker, the settling key; ARGV[2]: the TTL in ms.
_SETTLING = """
local function settling()
  if redis.call('exists', KEYS[2]) == 0 then
    redis.call('set', KEYS[2], '1')
    local info = redis.call('info', 'server')
    local uptime = tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
    if uptime * 1000 < tonumber(ARGV[2]) then
      redis.call('set', KEYS[3], '1', 'PX', tonumber(ARGV[2]) - uptime * 1000)
    end
  end
  return redis.call('pttl', KEYS[3])
end
"""

# The next fencing token (KEYS[4]): INCR, and never less than Redis' clock in
# microseconds, so that it still grows after Redis restarted empty (a counter alone
# would begin at 1 again, and every backend would refuse the new holders).
_FENCE = """
local function next_fence()
  local now = redis.call('time')
  local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('get', KEYS[4]) or '0')
  if floor > last + 1 then
    return redis.call('incrby', KEYS[4], string.format('%d', floor - last))
  end
  return redis.call('incr', KEYS[4])
end
"""

# Take the slot unless it is settling (-1) or held (0); taken, its fencing token (> 0).
# The lease's trace (KEYS[5]: the holder's token, written with the lease and with the
# same TTL) outlives a lease key deleted while held (by hand, or evicted): until the
# trace runs out, the holder may still be at work and its next renewal takes the key
# back, so nobody else may take it (an idle check cannot see a job still on its way to
# its backend). A lease that ran out, or was released, leaves no trace.
_TAKE = (
    _SETTLING
    + _FENCE
    + """
if settling() > 0 then
  return -1
end
local trace = redis.call('get', KEYS[5])
if trace and trace ~= ARGV[1] and redis.call('exists', KEYS[1]) == 0 then
  return -1
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('set', KEYS[5], ARGV[1], 'PX', ARGV[2])
  return next_fence()
end
return 0
"""
)

_SETTLING_LEFT = (
    _SETTLING
    + """
return math.max(settling(), 0)
"""
)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[2])
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaseStore(Protocol):
    async def try_set(self, token: str, ttl_ms: int) -> int:
        """Take the lease for `token` if nobody holds it: its fencing token (a number
        greater than any given before), or 0 when someone holds it; SlotSettling when
        the store cannot tell yet (it has just started empty, or the key went
        missing while held)."""
        ...

    async def renew(self, token: str, ttl_ms: int) -> bool:
        """Extend the lease `token` holds, or take it again if nobody holds it; False
        when another token holds it."""
        ...

    async def release(self, token: str) -> bool: ...
    async def current(self) -> str | None: ...
    async def settling_ms(self, ttl_ms: int) -> int:
        """How long nobody may take the slot yet: the store has just started empty."""
        ...

    async def close(self) -> None: ...


class RedisStore:
    """The lease as a Redis key: SET NX PX, compare-and-PEXPIRE (or take again), compare-and-DEL."""

    def __init__(self, url: str, key: str, retry_after_s: int) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._keys = [key, STORE_KEPT, STORE_SETTLING, f"{key}:fence", f"{key}:trace"]
        self._key = key
        self._retry_after_s = retry_after_s
        self._take = self._client.register_script(_TAKE)
        self._settling = self._client.register_script(_SETTLING_LEFT)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    async def _call(self, coro):
        try:
            return await coro
        except RedisError as exc:
            raise SlotStoreDown(str(exc) or type(exc).__name__, self._retry_after_s) from exc

    async def try_set(self, token: str, ttl_ms: int) -> int:
        taken = int(await self._call(self._take(keys=self._keys, args=[token, ttl_ms])))
        if taken == -1:
            raise SlotSettling(self._retry_after_s)
        return taken

    async def renew(self, token: str, ttl_ms: int) -> bool:
        return bool(await self._call(self._renew(keys=self._keys, args=[token, ttl_ms])))

    async def release(self, token: str) -> bool:
        keys = [self._key, self._keys[4]]
        return bool(await self._call(self._release(keys=keys, args=[token])))

    async def current(self) -> str | None:
        value = await self._call(self._client.get(self._key))
        return value.decode() if value is not None else None

    async def settling_ms(self, ttl_ms: int) -> int:
        keys = self._keys[:3]
        return int(await self._call(self._settling(keys=keys, args=["", ttl_ms])))

    async def close(self) -> None:
        await self._client.aclose()


class MemoryStore:
    """The same lease in this process, for one edge with no Redis (the embedded mode)."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires = 0.0
        self._fence = 0

    def _live(self) -> str | None:
        if self._token is not None and time.monotonic() >= self._expires:
            self._token = None
        return self._token

    async def try_set(self, token: str, ttl_ms: int) -> int:
        if self._live() is not None:
            return 0
        self._token, self._expires = token, time.monotonic() + ttl_ms / 1000
        # Never less than the clock (µs), as in Redis: it grows across edge restarts too.
        self._fence = max(self._fence + 1, time.time_ns() // 1000)
        return self._fence

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

    async def settling_ms(self, ttl_ms: int) -> int:
        return 0  # this process's memory: it never outlives a holder

    async def close(self) -> None:
        return None

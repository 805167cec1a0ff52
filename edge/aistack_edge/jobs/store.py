"""Where jobs are kept and queued: in this process (no Redis), or in Redis, where every
edge replica sees them and a job outlives the edge that ran it.

In Redis a job is one JSON value (`<key>:job:<id>`, expiring AISTACK_JOBS_KEEP_S after
its end); the queue is a Stream (`<key>:queue`) read by one consumer group, so each
entry goes to one replica; the replica renews its claim on the entry it runs (XCLAIM)
while it runs it, and acknowledges it at the job's end. An entry nobody has renewed for
AISTACK_JOBS_CLAIM_AFTER_S (its replica died) is taken over by another (XAUTOCLAIM),
which goes on from the job's checkpoint.
"""

import asyncio
import os
import time
from collections import deque
from typing import Protocol

import redis.asyncio
import redis.exceptions

from aistack_edge.jobs.job import Job

_GROUP = "workers"
_POLL_S = 0.5  # how often a follower of a job in Redis reads it again
_BLOCK_MS = 1000
"""How long a replica waits on the queue for a new entry before it looks for a dead
replica's (XAUTOCLAIM): well inside the client's socket timeout."""
_SAVE = """
local stored = redis.call('GET', KEYS[1])
if stored then
    local status = cjson.decode(stored)['status']
    if status ~= 'queued' and status ~= 'in_progress' then return 0 end
end
if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    redis.call('SREM', KEYS[2], ARGV[3])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""
"""A job written unless the stored one has ended; an ended one expires after its keep
time, and leaves the set of unfinished jobs."""


class JobStore(Protocol):
    durable: bool
    """Whether jobs outlive this edge."""

    async def add(self, job: Job) -> None:
        """Keep `job` and queue it."""
        ...

    async def save(self, job: Job) -> None: ...
    async def get(self, job_id: str) -> Job | None: ...
    async def unfinished(self) -> list[Job]: ...

    async def take(self) -> Job:
        """The next job to run: a queued one, or one whose runner has died."""
        ...

    async def keep_claim(self, job: Job) -> None:
        """`job` is still being run here (called well within the claim time)."""
        ...

    async def done(self, job: Job) -> None:
        """`job` has ended: it leaves the queue, and is deleted once kept long enough."""
        ...

    async def next_state(self, job: Job, seen: int) -> Job:
        """`job` once it has more than `seen` events, or has ended."""
        ...

    async def close(self) -> None: ...


class MemoryJobs:
    """The jobs of this process: lost when it ends."""

    durable = False

    def __init__(self, keep_s: float) -> None:
        self._keep_s = keep_s
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._queued = asyncio.Event()

    async def add(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._queue.append(job)
        self._queued.set()

    async def save(self, job: Job) -> None:
        pass  # the object is the state

    async def get(self, job_id: str) -> Job | None:
        self._expire()
        return self._jobs.get(job_id)

    async def unfinished(self) -> list[Job]:
        return [job for job in self._jobs.values() if not job.finished]

    async def take(self) -> Job:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            job = self._queue.popleft()
            if not job.finished:  # else cancelled while queued
                return job

    async def keep_claim(self, job: Job) -> None:
        pass

    async def done(self, job: Job) -> None:
        self._expire()

    async def next_state(self, job: Job, seen: int) -> Job:
        while len(job.events) <= seen and not job.finished:
            await job.changed().wait()
        return job

    def _expire(self) -> None:
        now = time.time()
        for job in list(self._jobs.values()):
            if job.finished_at is not None and now - job.finished_at >= self._keep_s:
                del self._jobs[job.id]

    async def close(self) -> None:
        pass


class RedisJobs:
    """The jobs of every replica on one Redis."""

    durable = True

    def __init__(self, url: str, key: str, keep_s: float, claim_after_s: float) -> None:
        self._redis = redis.asyncio.Redis.from_url(url)
        self._key = key
        self._queue_key = f"{key}:queue"
        self._unfinished_key = f"{key}:unfinished"
        self._keep_s = keep_s
        self._claim_ms = int(claim_after_s * 1000)
        self._me = f"edge-{os.getpid()}-{os.urandom(4).hex()}"
        self._entries: dict[str, bytes] = {}
        """The stream entry of each job this replica runs."""
        self._group_made = False
        self._save = self._redis.register_script(_SAVE)

    def _job_key(self, job_id: str) -> str:
        return f"{self._key}:job:{job_id}"

    async def _group(self) -> None:
        if self._group_made:
            return
        try:
            await self._redis.xgroup_create(self._queue_key, _GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_made = True

    async def add(self, job: Job) -> None:
        await self._group()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._job_key(job.id), job.dump())
            pipe.sadd(self._unfinished_key, job.id)
            pipe.xadd(self._queue_key, {"job": job.id})
            await pipe.execute()

    async def save(self, job: Job) -> None:
        """Write `job`, unless the stored one has ended (cancelled by another replica
        meanwhile: its runner sees that and stops)."""
        keep_s = max(1, int(self._keep_s)) if job.finished else 0
        await self._save(
            keys=[self._job_key(job.id), self._unfinished_key], args=[job.dump(), keep_s, job.id]
        )

    async def get(self, job_id: str) -> Job | None:
        raw = await self._redis.get(self._job_key(job_id))
        return Job.load(raw) if raw is not None else None

    async def unfinished(self) -> list[Job]:
        ids = [i.decode() for i in await self._redis.smembers(self._unfinished_key)]
        jobs = [await self.get(job_id) for job_id in ids]
        return [job for job in jobs if job is not None and not job.finished]

    async def take(self) -> Job:
        await self._group()
        while True:
            entry = await self._claimed() or await self._next_entry()
            if entry is None:
                continue
            entry_id, job_id = entry
            job = await self.get(job_id)
            if job is None or job.finished:  # cancelled while queued, or expired
                await self._ack(entry_id)
                continue
            self._entries[job.id] = entry_id
            return job

    async def _claimed(self) -> tuple[bytes, str] | None:
        """An entry whose replica has not renewed its claim in time: taken over."""
        answer = await self._redis.xautoclaim(
            self._queue_key, _GROUP, self._me, self._claim_ms, "0-0", count=1
        )
        claimed = answer[1]
        return (claimed[0][0], claimed[0][1][b"job"].decode()) if claimed else None

    async def _next_entry(self) -> tuple[bytes, str] | None:
        answer = await self._redis.xreadgroup(
            _GROUP, self._me, {self._queue_key: ">"}, count=1, block=_BLOCK_MS
        )
        if not answer:
            return None
        entry_id, fields = answer[0][1][0]
        return entry_id, fields[b"job"].decode()

    async def keep_claim(self, job: Job) -> None:
        if entry := self._entries.get(job.id):
            await self._redis.xclaim(self._queue_key, _GROUP, self._me, 0, [entry], justid=True)

    async def done(self, job: Job) -> None:
        if entry := self._entries.pop(job.id, None):
            await self._ack(entry)

    async def _ack(self, entry_id: bytes) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._queue_key, _GROUP, entry_id)
            pipe.xdel(self._queue_key, entry_id)
            await pipe.execute()

    async def next_state(self, job: Job, seen: int) -> Job:
        while len(job.events) <= seen and not job.finished:
            await asyncio.sleep(_POLL_S)
            job = await self.get(job.id) or job
        return job

    async def close(self) -> None:
        await self._redis.aclose()

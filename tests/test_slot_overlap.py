"""Two edges, one lease, two backends: never two workloads at once, whatever happens.

Each edge has its own asr-whisper; both share one Redis lease key, as two edge replicas in
front of one GPU would, and each edge's idle check reads the other's backend (both on
the one GPU). Clients keep both busy with short and long clips (windows that take
seconds), some hanging up after the first words; one backend loads its model for every
job (AISTACK_MODEL_KEEP_ALIVE_SEC=0); the edges' stop grace is shorter than a window, so
stops outlast it. Meanwhile, in turn: Redis restarted empty, Redis paused past the
lease's TTL, the lease key deleted while held, an edge paused (`SIGSTOP`) past the TTL
and resumed; and on each edge a client that asks for a stream and reads nothing of it
for a while before it hangs up. The backends' own job logs (when each worker computed, model loads
included, wall clock) must show no instant at which both computed.

The figures (jobs run, refusals, overlap) are printed for docs/reliability.md;
AISTACK_OVERLAP_RUN_S sets the run's length (a long run for the figures)."""

import asyncio
import contextlib
import os
import signal
import time

import aiohttp
import pytest
import redis.asyncio

from aistack_testing.asr_protocol import at_work, idle, job_log, wait_until
from aistack_testing.edge import form_body, never_reading
from aistack_testing.redis_server import RedisServer
from aistack_testing.speech import PASSAGE, speak

TTL_MS = 4000  # a lease unrenewed for 2.7 s is lost: 1.3 s for its backend to stop
RUN_S = float(os.environ.get("AISTACK_OVERLAP_RUN_S", "180"))
NEVER_READ_S = 10.0
CALM_S = 8.0  # between two faults: past a restart's settling time, some work gets done
SLOT_KEY = "aistack:gpu-slot"  # the edges' default
FAULTS = (
    "restarted empty",
    "paused past the TTL",
    "key deleted while held",
    "edge paused past the TTL",
)


def overlap_s(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """How long a job of `a` and a job of `b` computed at the same time, in all."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


@pytest.fixture
def chaotic_redis(tmp_path):
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


async def client(edge_url: str, audio: bytes, hang_up: bool, outcomes: dict[str, int]) -> None:
    """Transcriptions one after another until cancelled; every other one hangs up after
    its first delta when `hang_up`."""
    async with aiohttp.ClientSession() as session:
        turn = 0
        while True:
            turn += 1
            form = aiohttp.FormData()
            form.add_field("file", audio, filename="clip.wav")
            streamed = hang_up and turn % 2 == 0
            if streamed:
                form.add_field("stream", "true")
            try:
                async with session.post(
                    edge_url + "/v1/audio/transcriptions", data=form, timeout=60
                ) as r:
                    outcome = str(r.status)
                    if r.status != 200:
                        outcome += " " + _why((await r.json())["error"]["message"])
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    if r.status != 200:
                        await asyncio.sleep(0.2)
                        continue
                    async for line in r.content:
                        if streamed and line.startswith(b"data:"):
                            outcomes["hung up"] = outcomes.get("hung up", 0) + 1
                            break
                # A pause after a turn too, as after a refusal: a client that asked again
                # at once took the slot back before the other edge's client had retried
                # (one run computed 74 jobs on one edge and 1 on the other).
                await asyncio.sleep(0.2)
            except (aiohttp.ClientError, TimeoutError):
                outcomes["broken"] = outcomes.get("broken", 0) + 1


async def never_reader(edge_url: str, audio: bytes, outcomes: dict[str, int]) -> None:
    """Streamed transcriptions of `audio` one after another, of which it reads nothing,
    each for NEVER_READ_S before it hangs up, until cancelled."""
    body, content_type = form_body({"stream": "true", "include[]": "logprobs"}, audio)

    def one() -> None:
        try:
            with never_reading(edge_url, "/v1/audio/transcriptions", body, content_type):
                time.sleep(NEVER_READ_S)
        except OSError:  # refused before the body was sent: the edge closed
            pass

    while True:
        await asyncio.to_thread(one)
        outcomes["never read"] = outcomes.get("never read", 0) + 1
        await asyncio.sleep(0.2)


def _why(message: str) -> str:
    for word in ("GPU is busy", "busy", "lost a lease", "unreachable", "lease was lost"):
        if word in message:
            return word
    return message[:60]


async def chaos(redis_server: RedisServer, pairs: list, log: list[str]) -> None:
    """In turn: restart Redis empty, pause it past the TTL, delete the lease key while
    it is held, pause the holding edge past the TTL."""
    assert redis_server.proc is not None
    while True:
        await asyncio.sleep(CALM_S)
        redis_server.stop()
        redis_server.start(mark_kept=False)  # empty, as after a crash: nothing kept
        log.append("restarted empty")
        await asyncio.sleep(CALM_S)
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        await asyncio.sleep(TTL_MS / 1000 + 1)  # past the TTL
        os.kill(redis_server.proc.pid, signal.SIGCONT)
        log.append("paused past the TTL")
        await asyncio.sleep(CALM_S)
        if await _delete_held_key(redis_server):
            log.append("key deleted while held")
        await asyncio.sleep(CALM_S)
        holder = await _edge_at_work(pairs)
        os.kill(holder.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(TTL_MS / 1000 + 1)  # past the TTL, its backend at work
        finally:
            os.kill(holder.proc.pid, signal.SIGCONT)
        log.append("edge paused past the TTL")


async def _delete_held_key(redis_server: RedisServer) -> bool:
    """Delete the lease key as soon as someone holds it (the marker and its trace stay)."""
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        for _ in range(200):
            if await client.delete(SLOT_KEY):
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await client.aclose()


async def _edge_at_work(pairs: list) -> object:
    """The edge whose backend computes (waiting a little for one); else the first."""
    for _ in range(100):
        for edge, backend in pairs:
            if await at_work(backend.url):
                return edge
        await asyncio.sleep(0.05)
    return pairs[0][0]


@pytest.fixture
def long_clip(tmp_path):
    """About 45 s of varied speech (two windows of Whisper: seconds of compute on this
    CPU). Not one sentence repeated: Whisper's text for such a window compresses so well
    that its temperature fallback decodes it again and again, minutes on a loaded CPU,
    and a cancel only stops a job between windows (one such job held the slot 938 s of
    a 900 s run)."""
    return speak(PASSAGE, tmp_path / "passage.wav").read_bytes()


async def test_two_edges_never_compute_at_once(services, chaotic_redis, speech_wav, long_clip):
    clip = speech_wav.read_bytes()  # 5 s of speech: one step of Whisper, well under 1.3 s
    # No supervisor restarts a backend here: one that exits on a job stuck past
    # AISTACK_STOP_EXIT_S (a window on a saturated CPU can be) would end the run, and
    # test_workload.py covers that path. The second loads its model for every job: a
    # load is compute the fence must see too.
    never_exit = {"AISTACK_STOP_EXIT_S": "0"}
    backends = [
        services.start("aistack_asr_whisper", env=never_exit, timeout=120),
        services.start(
            "aistack_asr_whisper",
            env=never_exit | {"AISTACK_MODEL_KEEP_ALIVE_SEC": "0"},
            timeout=120,
        ),
    ]
    edges = [
        services.start(
            "aistack_edge",
            env={
                "AISTACK_ASR_BACKENDS": backend.url,
                "AISTACK_IDLE_CHECK_BACKENDS": other.url,
                "AISTACK_REDIS_URL": chaotic_redis.url,
                "AISTACK_SLOT_TTL_MS": str(TTL_MS),
                # shorter than a long clip's window: stops outlast the grace
                "AISTACK_STOP_GRACE_S": "1",
                "AISTACK_PROBE_TIMEOUT_S": "5",
            },
        )
        for backend, other in zip(backends, reversed(backends), strict=True)
    ]
    outcomes: dict[str, int] = {}
    events: list[str] = []
    tasks = [
        asyncio.create_task(client(edge.url, audio, hang_up, outcomes))
        for edge in edges
        for audio, hang_up in ((clip, False), (clip, True), (long_clip, True))
    ]
    tasks += [asyncio.create_task(never_reader(edge.url, long_clip, outcomes)) for edge in edges]
    pairs = list(zip(edges, backends, strict=True))
    tasks.append(asyncio.create_task(chaos(chaotic_redis, pairs, events)))
    began = time.time()
    await asyncio.sleep(RUN_S)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for backend in backends:
        assert backend.proc.poll() is None, backend.output()[-3000:]
    for backend in backends:  # the last jobs end: a window on a saturated CPU takes long
        try:
            await wait_until(lambda url=backend.url: idle(url), 300)
        except AssertionError:
            pytest.fail(
                f"{backend.url} still at work: {job_log(backend.url)[-3:]}\n"
                f"{backend.output()[-3000:]}"
            )
    logs = [job_log(backend.url) for backend in backends]
    computed = sum(end - start for log in logs for start, end in log)
    overruns = sum(edge.output().count("did not stop job") for edge in edges)
    print(
        f"\n{RUN_S:.0f} s from {began:.0f}: jobs {[len(log) for log in logs]}, "
        f"{computed:.1f} s computed, outcomes {outcomes}, stops past the grace {overruns}, "
        f"chaos {events}, overlap {overlap_s(*logs):.3f} s"
    )
    for fault in FAULTS:
        assert fault in events, events
    assert all(logs) and sum(map(len, logs)) >= 4, logs  # both computed, in turns
    assert outcomes.get("hung up", 0) >= 2
    assert overlap_s(*logs) == 0.0

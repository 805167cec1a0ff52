"""The one GPU workload path, through real edges in front of the real asr-whisper and
tts-piper: the slot covers the backend's work (not the HTTP exchange), a lost lease stops
the work, a refusal comes before the body, and every route makes room under `exclusive`.

The measure of "two workloads at once" is the backends' own job log (`/status`): the
wall-clock interval during which each job's worker computed."""

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio
from aiohttp import web

from aistack_edge.slot.stores import STORE_KEPT, STORE_SETTLING
from aistack_testing.asr_protocol import events, form, idle, job_log, loaded, wait_until
from aistack_testing.doubles import serving
from aistack_testing.edge import SLOT_KEY, envelope, transcribe, until_free, until_held
from aistack_testing.ollama import FOREVER, FakeOllama
from aistack_testing.redis_server import RedisServer

TTL_MS = 3000


def leases_lost(edge_url: str) -> float:
    """The edge's count of ASR leases lost while held."""
    metrics = httpx.get(edge_url + "/metrics", timeout=10).text
    line = 'aistack_slot_leases_lost_total{capability="asr"} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


def overlaps_within(log: list[tuple[float, float]]) -> float:
    ordered = sorted(log)
    return sum(max(0.0, e1 - s2) for (_, e1), (s2, _) in itertools.pairwise(ordered))


def edge_env(whisper, redis_server, **extra: str) -> dict[str, str]:
    env = {
        "AISTACK_ASR_BACKENDS": whisper.url,
        "AISTACK_REDIS_URL": redis_server.url,
        "AISTACK_SLOT_TTL_MS": str(TTL_MS),
        "AISTACK_PROBE_TIMEOUT_S": "5",
    }
    return env | {f"AISTACK_{name.upper()}": value for name, value in extra.items()}


async def hang_up_mid_window(edge_url: str, backend_url: str, audio: bytes) -> None:
    """A transcription whose client goes away while the backend computes (sent again
    while the slot is busy: the previous one may still be stopping)."""
    for _ in range(600):
        jobs = len(job_log(backend_url))
        request = asyncio.create_task(transcribe(edge_url, audio))
        for _ in range(1200):
            if request.done() or len(job_log(backend_url)) > jobs:
                break
            await asyncio.sleep(0.05)
        if not request.done():
            await asyncio.sleep(0.3)
            request.cancel()  # the client hangs up mid-window
            with contextlib.suppress(asyncio.CancelledError):
                await request
            return
        await asyncio.sleep(0.1)  # refused (503): the slot is still held
    raise AssertionError("the slot stayed busy")


@pytest.fixture(scope="module")
def edge(module_services, whisper, redis_server):
    # A grace longer than any one window of Whisper's, on a loaded machine too: the slot
    # is held until the job has stopped, never released to a held-back backend.
    env = edge_env(whisper, redis_server, stop_grace_s="60")
    return module_services.start("aistack_edge", env=env)


async def test_hang_up_keeps_the_slot_until_the_backend_stopped(
    edge, whisper, long_wav, speech_wav
):
    """A client hangs up mid-transcription and a new request comes at once, 20 times:
    the new one is refused or waits, and never computes beside the old one."""
    audio, short = long_wav.read_bytes(), speech_wav.read_bytes()
    for _ in range(20):
        await hang_up_mid_window(edge.url, whisper.url, audio)
        status, _, body = await transcribe(edge.url, short)
        assert status in (200, 503), body
    await wait_until(lambda: idle(whisper.url), 60)  # every job's end is in the log
    jobs = job_log(whisper.url)
    assert len(jobs) >= 20
    assert overlaps_within(jobs) == 0.0


async def test_a_lost_lease_stops_the_work(edge, whisper, long_wav, redis_url):
    """Another holder's token in the lease key: the running transcription ends at once
    with a 503 `network` (its job stopped), and the edge counts the loss."""
    await until_free(redis_url, limit_s=120)  # an earlier test's job may still be stopping
    lost_before = leases_lost(edge.url)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        request = asyncio.create_task(transcribe(edge.url, long_wav.read_bytes()))
        await until_held(redis_url)
        await asyncio.sleep(0.3)
        stolen_at = time.time()
        await client.set(SLOT_KEY, "someone-else.0 another edge", px=TTL_MS)
        status, _, body = await asyncio.wait_for(request, 10)
    finally:
        await client.aclose()
    assert status == 503
    assert "lease was lost" in envelope(body, "network")["message"]
    last_job_end = max(end for _, end in job_log(whisper.url))
    # a renewal, then the window being decoded (seconds on a 2-core CPU; the 3 minutes whole
    # take several times that)
    assert last_job_end - stolen_at < TTL_MS / 1000 / 3 + 8.0
    assert leases_lost(edge.url) == lost_before + 1


async def test_a_refusal_comes_before_100_continue(edge, long_wav, redis_url):
    """While this edge holds the slot, `Expect: 100-continue` gets the 503 itself, and
    the connection ends there: the body is never sent, nor read."""
    await until_free(redis_url, limit_s=120)
    running = asyncio.create_task(transcribe(edge.url, long_wav.read_bytes()))
    await until_held(redis_url)
    body = b"x" * 5_000_000
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    )
    port = int(edge.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    answer = await asyncio.wait_for(reader.read(), 20)  # to its end: the edge closes
    writer.close()
    assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
    assert b"100 Continue" not in answer
    assert b"Retry-After" in answer
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


async def test_an_acquisition_cut_short_leaves_no_lease(redis_url):
    """Cancelled between Redis's SET and the lease object: the token set is released
    at once, not left for its TTL."""
    from aistack_edge.slot import RedisStore, Slot

    class SlowAnswers(RedisStore):
        async def try_set(self, token: str, ttl_ms: int) -> bool:
            taken = await super().try_set(token, ttl_ms)
            await asyncio.sleep(1)  # the answer arrives late: the caller gives up first
            return taken

    slot = Slot(SlowAnswers(redis_url, SLOT_KEY, 5), 60_000, 0.0, 5)
    attempt = asyncio.create_task(slot.hold("cut short").__aenter__())
    await until_held(redis_url)
    attempt.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await attempt
    await until_free(redis_url, limit_s=2)
    await slot.store.close()


async def test_a_new_store_settles_for_one_ttl(tmp_path):
    """Redis restarted empty: for one TTL from its start nobody takes the slot, so a
    holder whose lease vanished can take it back first; then the slot is free again."""
    from aistack_edge.errors import SlotSettling
    from aistack_edge.slot import RedisStore

    server = RedisServer(tmp_path)
    server.start()
    client = redis.asyncio.Redis.from_url(server.url)
    store = RedisStore(server.url, SLOT_KEY, 5)
    try:
        await client.delete(STORE_KEPT)  # as after a restart: nothing kept
        with pytest.raises(SlotSettling):
            await store.try_set("newcomer", 60_000)
        assert await store.renew("old-holder", 60_000)  # the old holder comes back
        assert await store.release("old-holder")
        with pytest.raises(SlotSettling):  # still within the TTL from the restart
            await store.try_set("third", 60_000)
        await client.delete(STORE_SETTLING)  # as one TTL later
        assert await store.try_set("fourth", 60_000)
    finally:
        await client.aclose()
        await store.close()
        server.stop()


# --- hot-swap, for every route -----------------------------------------------------------


OLLAMA_TAG = "qwen3:4b"


@pytest.fixture
async def ollama() -> AsyncIterator[FakeOllama]:
    """The fake written from Ollama's source: an unload is answered before its runner goes."""
    async with FakeOllama([OLLAMA_TAG]) as double:
        yield double


async def ollama_idle(ollama: FakeOllama) -> bool:
    return not ollama.loaded


async def whisper_model_loaded(whisper) -> bool:
    return await loaded(whisper.url, "whisper-tiny.en")


async def load_whisper(whisper, wav: bytes) -> None:
    await events(whisper.url, form("whisper-tiny.en", wav))
    assert await whisper_model_loaded(whisper)


async def test_speech_and_transcription_make_room(services, whisper, piper, ollama, speech_wav):
    """Under `exclusive`, a speech request makes the ASR model and Ollama's model leave
    the GPU before it runs; a transcription makes Ollama's leave (and keeps its own)."""
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": whisper.url,
            "AISTACK_TTS_BACKENDS": piper.url,
            "AISTACK_OLLAMA_URL": ollama.url,
        },
    )
    wav = speech_wav.read_bytes()
    # A job of an earlier test, still stopping, would keep its model.
    await wait_until(lambda: idle(whisper.url), 60)
    await load_whisper(whisper, wav)
    ollama.loaded = {OLLAMA_TAG: FOREVER}
    async with httpx.AsyncClient(timeout=60) as client:  # the Ollama fake shares the loop
        speech = await client.post(
            edge.url + "/v1/audio/speech",
            json={"model": "piper", "input": "Room, please.", "voice": "alloy"},
        )
    assert speech.status_code == 200, speech.text
    assert not await whisper_model_loaded(whisper)
    assert [u["model"] for u in ollama.unloads] == [OLLAMA_TAG]

    await wait_until(lambda: ollama_idle(ollama), 10)  # its runner goes after the answer
    ollama.loaded = {OLLAMA_TAG: FOREVER}
    status, _, body = await transcribe(edge.url, wav)
    assert status == 200, body
    assert [u["model"] for u in ollama.unloads] == [OLLAMA_TAG, OLLAMA_TAG]
    assert await whisper_model_loaded(whisper)  # its own model stays, in use


# --- a backend that does not stop in time ------------------------------------------------


class Stubborn:
    """An ASR backend of the internal protocol whose job keeps running after a stop
    request, until `stops` is set: `DELETE /jobs/{id}` says so after its `?wait=`."""

    CARD = {"id": "whisper-stubborn", "owned_by": "test", "capabilities": ["asr"],
            "family": "whisper", "provider": "Stubborn", "supports_streaming": True}  # fmt: skip

    def __init__(self) -> None:
        self.stops = asyncio.Event()
        self.jobs: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/info", self.info)
        app.router.add_post("/transcribe", self.transcribe)
        app.router.add_delete("/jobs/{job_id}", self.stop_job)
        return app

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [self.CARD]})

    async def transcribe(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.jobs.append(request.headers["X-Request-ID"])
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(b'{"type": "info", "language": "en", "duration": 60.0}\n')
        await self.stops.wait()  # computes until told to stop, as far as the caller can tell
        return response

    async def stop_job(self, request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(float(request.query.get("wait", "5"))):
                await self.stops.wait()
        job = request.match_info["job_id"]
        return web.json_response({"job": job, "running": not self.stops.is_set()})


async def held_back(services, stubborn: Stubborn, url: str, wav: bytes):
    """An edge (grace 1 s) whose client hung up on `stubborn`, past the grace: the slot
    is free, the backend held back and watched."""
    edge = services.start(
        "aistack_edge", env={"AISTACK_ASR_BACKENDS": url, "AISTACK_STOP_GRACE_S": "1"}
    )
    hung_up = asyncio.create_task(transcribe(edge.url, wav))
    for _ in range(200):
        if stubborn.jobs:
            break
        await asyncio.sleep(0.02)
    hung_up.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await hung_up
    await asyncio.sleep(2.5)
    return edge


async def test_a_backend_past_its_grace_gets_no_new_work_until_it_stopped(services, speech_wav):
    stubborn, wav = Stubborn(), speech_wav.read_bytes()
    async with serving(stubborn.app()) as url, httpx.AsyncClient(timeout=30) as client:
        edge = await held_back(services, stubborn, url, wav)
        refused = await client.post(
            edge.url + "/v1/audio/transcriptions", files={"file": ("a.wav", wav)}
        )
        assert refused.status_code == 503, refused.text
        assert len(stubborn.jobs) == 1  # no new work reached it
        metrics = (await client.get(edge.url + "/metrics")).text
        assert 'aistack_backend_stop_overruns_total{capability="asr"} 1.0' in metrics
        stubborn.stops.set()  # its job ends: the edge takes it back
        for _ in range(100):
            models = (await client.get(edge.url + "/v1/models")).json()["data"]
            if any(card["id"] == Stubborn.CARD["id"] for card in models):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the backend was never taken back")


async def test_an_edge_stops_at_once_while_it_watches_a_held_back_backend(services, speech_wav):
    stubborn, wav = Stubborn(), speech_wav.read_bytes()
    async with serving(stubborn.app()) as url:
        edge = await held_back(services, stubborn, url, wav)
        began = time.monotonic()
        await asyncio.to_thread(edge.stop)
        assert time.monotonic() - began < 5
        assert edge.proc.returncode == 0
        log = edge.output()
        assert "did not stop job" in log
        assert "takes work again" not in log  # shut down, not taken back
        assert "Task was destroyed" not in log and "Unclosed" not in log, log
        stubborn.stops.set()


async def test_an_edge_is_not_ready_while_its_store_settles(services, tmp_path):
    """`/health/ready` (compose's and Kubernetes' readiness) waits out the settling time
    of a Redis that started empty: a stack is ready when a request can take the slot."""
    server = RedisServer(tmp_path)
    server.start(mark_kept=False)
    try:
        edge = services.start(
            "aistack_edge",
            env={"AISTACK_REDIS_URL": server.url, "AISTACK_SLOT_TTL_MS": "3000"},
        )
        async with httpx.AsyncClient(timeout=10) as client:
            settling = await client.get(edge.url + "/health/ready")
            assert settling.status_code == 503
            assert "just started empty" in envelope(settling.content, "network")["message"]
            await asyncio.sleep(3.2)
            assert (await client.get(edge.url + "/health/ready")).status_code == 200
    finally:
        server.stop()


# --- back to back ------------------------------------------------------------------------


async def test_the_next_request_finds_the_slot_free(services, cpu_stack_env, speech_wav):
    """A client that sends its next request as soon as it has read an answer finds the
    slot free, on every route, streamed or not: the slot is released before the
    answer's last bytes leave, not after."""
    edge = services.start("aistack_edge", env=cpu_stack_env)
    wav = speech_wav.read_bytes()
    chat = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4}  # fmt: skip
    speech = {"model": "piper", "input": "Next.", "voice": "alloy"}
    # A new connection each time, as separate clients (or a pool's other connections)
    # have: on a kept-alive one, the edge reads the next request after the last handler.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=edge.url, timeout=60, limits=fresh) as client:
        for round_ in range(8):
            stream = round_ % 2 == 1
            answers = [
                await client.post("/v1/chat/completions", json=chat | {"stream": stream}),
                await client.post("/v1/audio/speech", json=speech),
                await client.post(
                    "/v1/audio/transcriptions",
                    files={"file": ("a.wav", wav)},
                    data={"model": "whisper-tiny.en", "stream": str(stream).lower()},
                ),
            ]
            for answer in answers:
                assert answer.status_code == 200, (round_, answer.request.url, answer.text)

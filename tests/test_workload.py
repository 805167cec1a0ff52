"""The one GPU workload path, through real edges in front of the real asr-whisper and
tts-piper: the slot covers the backend's work (not the HTTP exchange), a lost lease stops
the work, a refusal comes before the body, and every route makes room under `exclusive`.

The measure of "two workloads at once" is the backends' own job log (`/status`): the
wall-clock interval during which each job's worker computed."""

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
import redis.asyncio
from aiohttp import web

from aistack_contract.jobs import FENCE_HEADER
from aistack_edge.slot.stores import STORE_KEPT, STORE_SETTLING
from aistack_testing.asr_protocol import (
    at_work,
    events,
    form,
    idle,
    job_log,
    loaded,
    wait_until,
)
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


async def test_every_job_carries_the_lease_fence(edge, whisper, speech_wav):
    """The edge sends its lease's fencing token with the job: after a transcription
    through the edge, the backend refuses a job under an older lease (503 `network`)
    and takes one under none (a direct caller)."""
    wav = speech_wav.read_bytes()
    status, _, body = await transcribe(edge.url, wav)
    assert status == 200, body
    stale = {FENCE_HEADER: "1"}  # the first token a Redis counter alone would give
    async with aiohttp.ClientSession() as session:
        async with session.post(
            whisper.url + "/transcribe", data=form("whisper-tiny.en", wav), headers=stale
        ) as refused:
            assert refused.status == 503
            assert (
                "fencing token 1 is older" in envelope(await refused.read(), "network")["message"]
            )
        async with session.post(
            whisper.url + "/transcribe", data=form("whisper-tiny.en", wav)
        ) as direct:
            assert direct.status == 200
            await direct.read()  # to its end: a hang-up would leave the job computing


async def test_a_workload_starts_only_on_an_idle_gpu(services, whisper, long_wav, speech_wav):
    """Idle before start: while a job runs on another backend of the slot's GPU (one
    that another edge routes to), a request that took the slot waits for it within its
    wait, then answers 503 busy naming it, with Retry-After; once that backend is idle,
    the request runs, and the two backends never computed at once."""
    other = services.start("aistack_asr_whisper", timeout=120)
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": whisper.url,
            "AISTACK_IDLE_CHECK_BACKENDS": other.url,
            "AISTACK_IDLE_WAIT_S": "0.5",
            "AISTACK_PROBE_TIMEOUT_S": "5",
        },
    )
    elsewhere = asyncio.create_task(
        events(other.url, form("whisper-tiny.en", long_wav.read_bytes()))
    )
    try:
        await wait_until(lambda: at_work(other.url), 60)
        status, headers, body = await transcribe(edge.url, speech_wav.read_bytes())
        assert status == 503, body
        message = envelope(body, "network")["message"]
        assert "GPU is busy" in message and other.url in message
        assert headers["Retry-After"]
    finally:
        elsewhere.cancel()  # a hang-up: the job stops at its next segment
        with contextlib.suppress(asyncio.CancelledError):
            await elsewhere
    await wait_until(lambda: idle(other.url), 60)
    status, _, body = await transcribe(edge.url, speech_wav.read_bytes())
    assert status == 200, body
    await wait_until(lambda: idle(whisper.url), 60)
    assert overlaps_within(job_log(whisper.url) + job_log(other.url)) == 0.0


@pytest.mark.parametrize("fault", ["key deleted", "holder paused past the TTL"])
async def test_a_lost_lease_never_gives_two_computing_backends(
    fault, services, whisper, redis_server, long_wav, speech_wav
):
    """Redis loses the key of a lease whose work runs (a `DEL`, a failover, eviction:
    its marker kept): the lease's trace keeps a second edge out (503, the holder may take
    it back). Or its edge is paused (`SIGSTOP`) past the TTL: the key is free and a
    second edge takes it, but its workload finds the first edge's backend at work (idle
    before start) and answers 503 busy. The two backends, as on one GPU, never compute
    at once."""
    other = services.start("aistack_asr_whisper", timeout=120)
    key = f"aistack:test-fence:{fault.split()[0]}"

    def edge_of(own, theirs):
        env = edge_env(own, redis_server, slot_key=key, stop_grace_s="60", idle_wait_s="0.5")
        return services.start("aistack_edge", env=env | {"AISTACK_IDLE_CHECK_BACKENDS": theirs.url})

    holder, newcomer = edge_of(whisper, other), edge_of(other, whisper)
    await wait_until(lambda: idle(whisper.url), 120)  # an earlier test's job may still stop
    running = asyncio.create_task(transcribe(holder.url, long_wav.read_bytes()))
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await wait_until(lambda: at_work(whisper.url), 60)
        if fault == "key deleted":
            await client.delete(key)
        else:
            os.kill(holder.proc.pid, signal.SIGSTOP)
            await wait_until(lambda: _gone(client, key), 30)  # the TTL ran out
        status, _, body = await transcribe(newcomer.url, speech_wav.read_bytes())
        assert status == 503, body
        refused = "lost a lease a moment ago" if fault == "key deleted" else "GPU is busy"
        assert refused in envelope(body, "network")["message"]
    finally:
        if fault != "key deleted":
            os.kill(holder.proc.pid, signal.SIGCONT)
        await client.aclose()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    await wait_until(lambda: idle(whisper.url), 120)
    assert overlaps_within(job_log(whisper.url) + job_log(other.url)) == 0.0


async def _gone(client: redis.asyncio.Redis, key: str) -> bool:
    return not await client.exists(key)


def transcribed_to_the_end_s(backend_url: str) -> float:
    """The ASR backend's seconds of audio transcribed to the end (its /metrics)."""
    line = 'aistack_asr_backend_audio_seconds_total{model="whisper-tiny.en"} '
    metrics = httpx.get(backend_url + "/metrics", timeout=10).text
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


async def test_a_lost_lease_stops_the_work(edge, whisper, long_wav, redis_url):
    """Another holder's token in the lease key: the running transcription ends with a
    503 `network`, its job stopped before the answer and short of the recording's end,
    and the edge counts the loss."""
    await until_free(redis_url, limit_s=120)  # an earlier test's job may still be stopping
    lost_before = leases_lost(edge.url)
    whole_before = transcribed_to_the_end_s(whisper.url)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        request = asyncio.create_task(transcribe(edge.url, long_wav.read_bytes()))
        await until_held(redis_url)
        await wait_until(lambda: at_work(whisper.url), 30)
        await client.set(SLOT_KEY, "someone-else.0 another edge", px=TTL_MS)
        # The answer waits for the job's stop: a window being decoded, which a loaded
        # machine stretches; that it stopped short of the end is asserted below.
        status, _, body = await asyncio.wait_for(request, 120)
        answered_at = time.time()
    finally:
        await client.aclose()
    assert status == 503
    assert "lease was lost" in envelope(body, "network")["message"]
    await wait_until(lambda: idle(whisper.url), 120)  # its job has stopped (or ended)
    last_job_end = max(end for _, end in job_log(whisper.url))
    assert last_job_end <= answered_at  # the slot covered the work: stopped, then answered
    # Stopped, not run to its end: the backend counts a job's audio once transcribed whole.
    assert transcribed_to_the_end_s(whisper.url) == whole_before
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


class Vllm:
    """vLLM's OpenAI-compatible server as far as the fence sees it: `GET /v1/models`; a
    speech request that computes in steps; `GET /metrics` with the scheduler's gauges
    `vllm:num_requests_running` and `vllm:num_requests_waiting`, labelled by
    `model_name` (vllm-project/vllm: vllm/v1/metrics/loggers.py, PrometheusStatLogger;
    docs/design/v1/metrics.md); and no `/jobs` route (404, as any route its FastAPI app
    lacks). A request whose client went away is aborted at the end of the engine step
    under way (`step_done` stands for it): until then it counts as running."""

    MODEL = "qwen3-tts-12hz-0.6b-customvoice"

    def __init__(self) -> None:
        self.running = 0
        self.step_done = asyncio.Event()
        self.hung_up = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/v1/audio/speech", self.speech)
        return app

    async def models(self, request: web.Request) -> web.Response:
        card = {"id": self.MODEL, "object": "model", "owned_by": "vllm"}
        return web.json_response({"object": "list", "data": [card]})

    async def metrics(self, request: web.Request) -> web.Response:
        label = f'{{engine="0",model_name="{self.MODEL}"}}'
        text = (
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{label} {float(self.running)}\n"
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{label} 0.0\n"
        )
        return web.Response(text=text, content_type="text/plain")

    async def speech(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.running += 1
        try:
            response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
            await response.prepare(request)
            while not self.step_done.is_set():
                try:
                    await response.write(b"\0" * 4096)
                except ConnectionError:
                    self.hung_up.set()
                    await self.step_done.wait()  # aborted at the end of the step
                    raise
                await asyncio.sleep(0.05)
            await response.write_eof()
            return response
        finally:
            self.running -= 1


async def test_a_backend_without_jobs_is_stopped_by_what_it_reports(services):
    """vLLM has no `DELETE /jobs`: its 404 is not taken for "stopped". After a hang-up
    the slot stays held until its metrics say it runs nothing."""
    vllm = Vllm()
    speech = {"model": Vllm.MODEL, "input": "A step at a time.", "voice": "vivian"}
    async with serving(vllm.app()) as url, httpx.AsyncClient(timeout=30) as client:
        edge = services.start(
            "aistack_edge", env={"AISTACK_TTS_BACKENDS": url, "AISTACK_STOP_GRACE_S": "60"}
        )
        async with client.stream("POST", edge.url + "/v1/audio/speech", json=speech) as r:
            assert r.status_code == 200
            async for _ in r.aiter_bytes():
                break  # the client hangs up at the first bytes

        async def hung_up() -> bool:
            return vllm.hung_up.is_set()

        try:
            await wait_until(hung_up, 30)
            async with client.stream("POST", edge.url + "/v1/audio/speech", json=speech) as r:
                status = r.status_code  # a 200 streams until the step ends: not read
                body = await r.aread() if status != 200 else b""
            assert status == 503, body
            assert "busy" in envelope(body, "network")["message"]
        finally:
            vllm.step_done.set()
        await wait_until(lambda: _free(client, edge.url), 30)


async def _free(client: httpx.AsyncClient, edge_url: str) -> bool:
    status = (await client.get(edge_url + "/admin/api/status")).json()
    return status["slot"]["holder"] is None


async def stuck_edge(services, stubborn: Stubborn, url: str, wav: bytes, **env: str):
    """An edge (grace 1 s) whose client hung up on `stubborn`, which does not stop: the
    edge holds the slot past the grace, for the job (its admin status says so)."""
    edge = services.start(
        "aistack_edge",
        env={"AISTACK_ASR_BACKENDS": url, "AISTACK_STOP_GRACE_S": "1"} | env,
    )
    hung_up = asyncio.create_task(transcribe(edge.url, wav))

    async def started() -> bool:
        return bool(stubborn.jobs)

    await wait_until(started, 10)
    hung_up.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await hung_up
    await wait_until(lambda: _stuck(edge.url), 30)
    return edge


async def _stuck(edge_url: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=10) as client:
        status = (await client.get(edge_url + "/admin/api/status")).json()
    return status["slot"]["stuck"]


async def test_past_the_grace_the_slot_stays_held(services, piper, speech_wav):
    """A cancelled job that does not stop within AISTACK_STOP_GRACE_S keeps the GPU slot
    held (it is never released on a timer while a job is known to run): another
    capability is refused as busy, the admin status and /metrics say by what and since
    when; once the job stops, the slot is free."""
    stubborn, wav = Stubborn(), speech_wav.read_bytes()
    speech = {"model": "piper", "input": "Not beside a stuck job.", "voice": "alloy"}
    async with serving(stubborn.app()) as url, httpx.AsyncClient(timeout=30) as client:
        edge = await stuck_edge(services, stubborn, url, wav, AISTACK_TTS_BACKENDS=piper.url)
        refused = await client.post(edge.url + "/v1/audio/speech", json=speech)
        assert refused.status_code == 503, refused.text
        assert "busy" in envelope(refused.content, "network")["message"]
        [stuck] = await _stuck(edge.url)
        assert stuck["backend"] == url and stuck["job"] == stubborn.jobs[0]
        metrics = (await client.get(edge.url + "/metrics")).text
        assert 'aistack_backend_stop_overruns_total{capability="asr"} 1.0' in metrics
        assert f'aistack_slot_stuck_since_seconds{{backend="{url}"}}' in metrics
        stubborn.stops.set()  # its job ends: the slot is released

        async def spoken() -> bool:
            return (await client.post(edge.url + "/v1/audio/speech", json=speech)).is_success

        await wait_until(spoken, 30)
        assert (
            "aistack_slot_stuck_since_seconds{"
            not in (await client.get(edge.url + "/metrics")).text
        )


async def test_a_stuck_job_does_not_hold_the_clients_answer(services, speech_wav):
    """The client's error answer (here: the backend sent nothing for
    AISTACK_BACKEND_TIMEOUT_S) leaves once the stop grace has passed, while the slot
    stays held for the job that did not stop, by a task of its own, until it stops. The
    answer used to wait with the slot, here for ever."""
    stubborn, wav = Stubborn(), speech_wav.read_bytes()
    async with serving(stubborn.app()) as url, httpx.AsyncClient(timeout=30) as client:
        env = {"AISTACK_STOP_GRACE_S": "1", "AISTACK_BACKEND_TIMEOUT_S": "2"}
        edge = services.start("aistack_edge", env=env | {"AISTACK_ASR_BACKENDS": url})
        try:
            status, _, body = await asyncio.wait_for(transcribe(edge.url, wav), 60)
            assert status == 503, body
            assert "Timeout" in envelope(body, "network")["message"]
            [stuck] = await _stuck(edge.url)
            assert stuck["job"] == stubborn.jobs[0]
            refused = await client.post(edge.url + "/v1/audio/transcriptions", files={"file": wav})
            assert refused.status_code == 503 and "busy" in refused.text
        finally:
            stubborn.stops.set()
        await wait_until(lambda: _free(client, edge.url), 30)


async def test_an_edge_stops_at_once_while_a_job_is_stuck(services, speech_wav):
    stubborn, wav = Stubborn(), speech_wav.read_bytes()
    async with serving(stubborn.app()) as url:
        edge = await stuck_edge(services, stubborn, url, wav)
        began = time.monotonic()
        await asyncio.to_thread(edge.stop)
        assert time.monotonic() - began < 5
        assert edge.proc.returncode == 0
        log = edge.output()
        assert "did not stop job" in log
        assert "the GPU slot is released" not in log  # shut down, not stopped
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
            # A TTL longer than an edge takes to start on a loaded machine (3 s was not).
            env={"AISTACK_REDIS_URL": server.url, "AISTACK_SLOT_TTL_MS": "20000"},
        )
        async with httpx.AsyncClient(timeout=10) as client:
            settling = await client.get(edge.url + "/health/ready")
            assert settling.status_code == 503
            assert "just started empty" in envelope(settling.content, "network")["message"]

            async def ready() -> bool:
                return (await client.get(edge.url + "/health/ready")).status_code == 200

            await wait_until(ready, 40)
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

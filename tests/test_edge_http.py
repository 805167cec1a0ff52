"""The edge over real HTTP: /health, /v1/models, request ids, and the envelope on
every error path that needs no backend."""

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from aistack_testing.edge import envelope
from aistack_testing.processes import free_port


@pytest.fixture(scope="module")
def edge(module_services):
    return module_services.start("aistack_edge", env={"AISTACK_MAX_UPLOAD_MB": "1"})


async def test_health(edge):
    async with aiohttp.request("GET", edge.url + "/health") as r:
        assert r.status == 200
        body = await r.json()
    assert (body["status"], body["version"]) == ("ok", "0.0.1")  # the contract's fields
    assert body["backends"] == []  # none configured; the rest: tests/test_health.py


async def test_models_lists_nothing_with_no_backend(edge):
    async with aiohttp.request("GET", edge.url + "/v1/models") as r:
        assert r.status == 200
        assert await r.json() == {"object": "list", "data": []}


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/v2/models", 404, "no such route: GET /v2/models"),
        ("POST", "/health", 405, "POST is not allowed on /health (allowed: GET, HEAD)"),
        ("DELETE", "/v1/models", 405, "DELETE is not allowed on /v1/models (allowed: GET, HEAD)"),
        ("GET", "/v1/models/no-such-model", 404, "no-such-model"),
    ],
)
async def test_unknown_routes_and_methods(edge, method, path, status, message):
    """Kind `malformed`, as docs/architecture.md and /openapi.json say, with HTTP's own
    status and a message that names the method, the route and what it allows."""
    async with aiohttp.request(method, edge.url + path) as r:
        assert r.status == status
        assert r.content_type == "application/json"
        error = envelope(await r.read(), "malformed")
        assert error["provider"] == "aistack"
        assert message in error["message"], error


@pytest.mark.parametrize(
    ("data", "message_part"),
    [
        ({"model": "auto"}, "file"),
        ({"file": ("", "a.wav"), "model": "auto"}, "file"),
        ({"file": (b"RIFF....", "a.wav"), "response_format": "docx"}, "response_format"),
        ({"file": (b"RIFF....", "a.wav"), "temperature": "hot"}, "temperature"),
        ({"file": (b"RIFF....", "a.wav"), "stream": "maybe"}, "stream"),
        ({"file": (b"RIFF....", "a.wav"), "segment_granularity": "word"}, "segment_granularity"),
        ({"file": (b"RIFF....", "a.wav"), "timestamp_granularities[]": "char"}, "timestamp"),
    ],
)
async def test_bad_transcription_forms_are_malformed(edge, data, message_part):
    form = aiohttp.FormData()
    for name, value in data.items():
        if isinstance(value, tuple):
            form.add_field(name, value[0], filename=value[1])
        else:
            form.add_field(name, value)
    async with aiohttp.request("POST", edge.url + "/v1/audio/transcriptions", data=form) as r:
        assert r.status == 400
        assert message_part in envelope(await r.read(), "malformed")["message"]


async def test_json_body_where_a_form_is_expected(edge):
    async with aiohttp.request(
        "POST",
        edge.url + "/v1/audio/transcriptions",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 400
        envelope(await r.read(), "malformed")


async def test_no_asr_backend_is_a_503(edge):
    form = aiohttp.FormData()
    form.add_field("file", b"RIFF....", filename="a.wav")
    async with aiohttp.request("POST", edge.url + "/v1/audio/transcriptions", data=form) as r:
        assert r.status == 503
        envelope(await r.read(), "network")


async def test_oversized_upload_is_refused_while_streaming(edge):
    """A chunked upload (no Content-Length) is answered 413 as soon as it passes the
    1 MB limit, while the client is still sending: its body never ends, so an edge that
    waited for the end would never answer (the 60 s bound fails)."""
    boundary = "xyz"

    async def multipart():
        disposition = 'Content-Disposition: form-data; name="file"; filename="a.wav"'
        yield f"--{boundary}\r\n{disposition}\r\n\r\n".encode()
        for _ in range(24):
            yield b"\0" * 65536  # 1.5 MB
        await asyncio.Event().wait()  # still sending
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with (
        asyncio.timeout(60),
        aiohttp.request(
            "POST", edge.url + "/v1/audio/transcriptions", data=multipart(), headers=headers
        ) as r,
    ):
        assert r.status == 413
        assert envelope(await r.read(), "overflow")["provider"] == "aistack"


async def test_declared_oversize_is_refused_up_front(edge):
    form = aiohttp.FormData()
    form.add_field("file", b"\0" * (2 * 2**20), filename="a.wav")
    async with aiohttp.request("POST", edge.url + "/v1/audio/transcriptions", data=form) as r:
        assert r.status == 413
        envelope(await r.read(), "overflow")


@pytest.mark.parametrize(
    ("given", "kept"),
    [("trace-42_a.b:c", True), ("has spaces", False), ("x" * 129, False), ("ünïcode", False)],
)
async def test_request_id_is_echoed_when_safe(edge, given, kept):
    async with aiohttp.request("GET", edge.url + "/nope", headers={"X-Request-ID": given}) as r:
        echoed = r.headers["X-Request-ID"]
    assert (echoed == given) is kept
    assert 1 <= len(echoed) <= 128


async def test_request_id_is_made_when_absent(edge):
    async with aiohttp.request("GET", edge.url + "/health") as r:
        assert len(r.headers["X-Request-ID"]) == 32


# How much longer than the probe timeout the edge may take to answer after the hanging
# backend was asked. Measured: at most 0.02 s over 5 runs on a shared two-core machine
# (load average 11); fifty times that here.
PROBE_MARGIN_S = 1.0


async def test_models_probe_skips_dead_and_slow_backends(services):
    """A backend that refuses or hangs contributes nothing, and costs at most the probe
    timeout, counted from when the edge asked it (it still hangs when the edge answers)."""
    hang_port = free_port()
    finished = asyncio.Event()
    asked: list[float] = []

    async def hang(request: web.Request) -> web.Response:
        asked.append(time.monotonic())
        await finished.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/info", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hang_port).start()
    try:
        edge = services.start(
            "aistack_edge",
            env={
                "AISTACK_ASR_BACKENDS": f"http://127.0.0.1:{free_port()},http://127.0.0.1:{hang_port}",
                "AISTACK_PROBE_TIMEOUT_S": "0.5",
            },
        )
        async with aiohttp.request("GET", edge.url + "/v1/models") as r:
            assert (await r.json())["data"] == []
        answered = time.monotonic()
        assert len(asked) == 1
        assert answered - asked[0] < 0.5 + PROBE_MARGIN_S
    finally:
        finished.set()
        await runner.cleanup()

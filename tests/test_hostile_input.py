"""One request must not take the edge down: JSON bodies bounded after decompression,
nesting and content types refused as malformed, and the envelope even for what
aiohttp's own HTTP parser refuses. A real edge process over real HTTP; no backend is
needed, since every one of these is answered before a backend is chosen."""

import asyncio
import gzip
import json
import resource
import socket
import time
import zlib

import aiohttp
import pytest

from aistack_testing.edge import envelope
from aistack_testing.memory import PeakGrowth

JSON_ROUTES = ["/v1/chat/completions", "/v1/audio/speech"]
JSON = {"Content-Type": "application/json"}
# The default lease's renewal interval (AISTACK_SLOT_TTL_MS 10000, renewed every third).
RENEWAL_S = 10 / 3


@pytest.fixture(scope="module")
def edge(module_services):
    return module_services.start("aistack_edge")


def bomb(decoded_mb: int) -> bytes:
    """A chat body of `decoded_mb` MB of empty messages, gzipped to about a thousandth:
    parsed whole, millions of objects."""
    head, unit = b'{"model": "smollm2", "messages": [', b"{},"
    return gzip.compress(head + unit * (decoded_mb * 2**20 // len(unit)) + b"{}]}", 9)


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    async with aiohttp.request("POST", url, data=body, headers=headers) as r:
        return r.status, await r.read()


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_a_gzip_bomb_is_an_overflow_while_it_is_read(edge, path):
    """16 MB once inflated, 16 kB on the wire: refused at the JSON limit (2 MB), counted
    after decompression, before it is parsed. The edge's resident memory shows it: held
    inflated whole, the body alone would be 16 MiB, and parsed, hundreds (measured:
    +3.3 MiB, on every run)."""
    body = bomb(16)
    assert len(body) < 64 * 1024
    with PeakGrowth(edge.proc.pid) as growth:
        status, answer = await post(edge.url + path, body, {**JSON, "Content-Encoding": "gzip"})
    assert status == 413, answer
    assert "2 MB" in envelope(answer, "overflow")["message"]
    assert growth.mib < 12, growth.mib


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_a_plain_json_body_past_the_limit_is_an_overflow(edge, path):
    body = b'{"model": "x", "input": "' + b"a" * (3 * 2**20) + b'"}'
    status, answer = await post(edge.url + path, body, JSON)
    assert status == 413
    envelope(answer, "overflow")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_within_the_limit_is_read(edge, encoding):
    """Within the limit, a compressed body is read as the plain one: here it reaches
    model lookup (no LLM configured: 503), not a decoding error."""
    plain = json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]})
    packed = gzip.compress(plain.encode()) if encoding == "gzip" else zlib.compress(plain.encode())
    status, answer = await post(
        edge.url + "/v1/chat/completions", packed, {**JSON, "Content-Encoding": encoding}
    )
    assert status == 503
    assert "no LLM is configured" in envelope(answer, "network")["message"]


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize(
    ("encoding", "body", "part"),
    [
        ("compress", b"\x1f\x9d...", "not supported"),
        ("gzip", b"this is no gzip stream", "can't be decoded"),
    ],
)
async def test_a_body_that_cant_be_decoded_is_malformed(edge, path, encoding, body, part):
    status, answer = await post(edge.url + path, body, {**JSON, "Content-Encoding": encoding})
    assert status == 400
    assert part in envelope(answer, "malformed")["message"]


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_deep_nesting_is_malformed(edge, path):
    """Past the parser's recursion limit: a RecursionError, which was a 500."""
    depth = 100_000
    body = b'{"model": "x", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    status, answer = await post(edge.url + path, body, JSON)
    assert status == 400
    assert "nested too deeply" in envelope(answer, "malformed")["message"]


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_json_route_refuses_other_content_types(edge, path, content_type):
    body = json.dumps({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    status, answer = await post(edge.url + path, body.encode(), {"Content-Type": content_type})
    assert status == 400
    assert "application/json" in envelope(answer, "malformed")["message"]


def exchange(url: str, raw: bytes) -> bytes:
    """Send `raw` bytes as they are on a new connection; all the answer until it closes
    (or 5 s pass)."""
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer


@pytest.mark.parametrize(
    "raw",
    [
        b"NOT A REQUEST LINE\r\n\r\n",
        b"GET /health HTTP/9.9\r\nHost: localhost\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nX: a\x00b\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["request-line", "version", "header-name", "header-value", "two-lengths", "chunk"],
)
def test_what_the_http_parser_refuses_is_the_envelope(edge, raw):
    """aiohttp's parser answers these itself, before any handler: a text/plain 400 and
    a logged traceback, unless the edge gives its own answer."""
    head, _, body = exchange(edge.url, raw).partition(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    assert status_line.split()[1] == "400", head
    assert "content-type: application/json; charset=utf-8" in {h.lower() for h in headers}
    assert envelope(body, "malformed")["provider"] == "aistack"
    assert "Traceback" not in edge.output()


async def test_an_upload_with_no_room_to_spool_is_a_503(services):
    """A full temporary directory (here: a 1 MB file size limit on the edge process) is
    the edge's trouble, not the client's: 503 `network`, never a 500."""
    edge = services.start("aistack_edge")
    resource.prlimit(edge.proc.pid, resource.RLIMIT_FSIZE, (2**20, 2**20))
    form = aiohttp.FormData()
    form.add_field("file", bytes(5 * 2**20), filename="a.wav")
    async with aiohttp.request("POST", edge.url + "/v1/audio/transcriptions", data=form) as r:
        assert r.status == 503
        assert "no room to hold the upload" in envelope(await r.read(), "network")["message"]
    async with aiohttp.request("GET", edge.url + "/health") as r:
        assert r.status == 200


async def test_the_costliest_json_within_the_limit_stops_the_loop_briefly(edge):
    """2 MB of empty objects, the costliest shape to parse (about 24 times its size in
    objects): parsed on the event loop, it holds /health up for a fraction of a second,
    well inside the lease's renewal interval (a third of the TTL): under half of it here.
    Measured, the slowest /health: 0.62 to 0.72 s beside `stress --cpu 2` on a shared
    two-core machine (load average 12)."""
    body = b'{"model": "smollm2", "messages": [' + b"{}," * (2**21 // 3 - 20) + b"{}]}"
    assert len(body) <= 2 * 2**20
    slowest = 0.0
    async with aiohttp.ClientSession() as session:

        async def ask_health() -> None:
            nonlocal slowest
            for _ in range(40):
                began = time.perf_counter()
                async with session.get(edge.url + "/health") as r:
                    assert r.status == 200
                slowest = max(slowest, time.perf_counter() - began)
                await asyncio.sleep(0.01)

        async def chat() -> int:
            async with session.post(
                edge.url + "/v1/chat/completions", data=body, headers=JSON
            ) as r:
                return r.status

        status, _ = await asyncio.gather(chat(), ask_health())
    assert status == 503  # parsed whole: no LLM is configured here
    assert slowest < RENEWAL_S / 2, slowest


async def test_an_admin_change_nested_too_deeply_is_malformed(services):
    """The admin API's JSON goes through the same bounded reading (it was a 500)."""
    edge = services.start("aistack_edge", env={"AISTACK_ADMIN_TOKEN": "hostile-admin"})
    headers = {**JSON, "Authorization": "Bearer hostile-admin"}
    url = edge.url + "/admin/api/observability"
    status, answer = await post(url, b"[" * 100_000 + b"]" * 100_000, headers)
    assert status == 400
    assert "nested too deeply" in envelope(answer, "malformed")["message"]
    status, answer = await post(url, b'{"capture": "' + b"x" * 3 * 2**20 + b'"}', headers)
    assert status == 413
    envelope(answer, "overflow")

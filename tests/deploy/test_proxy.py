"""deploy/nginx for real: Debian's nginx with the shipped configuration, a certificate from
install.sh and a token from add-token.sh, in front of a real edge whose LLM upstream is a
small OpenAI-compatible server that the test steers."""

import asyncio
import contextlib
import json
import os
import pwd
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiohttp import web

from aistack_testing import system
from aistack_testing.edge import envelope
from aistack_testing.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = ROOT / "deploy" / "nginx"
MAIN_CONF = """
daemon off;
user {user};
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    include conf.d/aistack.conf;
}}
"""


class SteeredLLM:
    """An OpenAI-compatible LLM server in a thread: streams one event, then waits for
    `release` before the rest; answers a plain request with the size of what it received."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[int] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        app = web.Application(client_max_size=0)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        self._runner = web.AppRunner(app)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)

    async def _serve(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "steered", "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(len(body))
        if not json.loads(body).get("stream"):
            return web.json_response({"object": "chat.completion", "received": len(body)})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n')
        await asyncio.to_thread(self.release.wait, 30)
        for n in (2, 3):
            await response.write(f'data: {{"n": {n}}}\n\n'.encode())
        await response.write(b"data: [DONE]\n\n")
        return response


@pytest.fixture(scope="module")
def llm() -> Iterator[SteeredLLM]:
    server = SteeredLLM()
    server.start()
    yield server
    server.release.set()
    server.stop()


@pytest.fixture(scope="module")
def edge(module_services, llm):
    # JSON bodies up to 64 MB: the 50 MB test below is of what nginx lets through.
    env = {"AISTACK_LLM_UPSTREAMS": llm.url, "AISTACK_MAX_JSON_MB": "64"}
    return module_services.start("aistack_edge", env=env)


@pytest.fixture(scope="module")
def proxy(edge, tmp_path_factory) -> Iterator[dict]:
    """nginx on a free port in front of `edge`: its URL, the CA file, a client's token."""
    with nginx_in_front_of(edge.url, tmp_path_factory.mktemp("nginx")) as started:
        yield started


@contextlib.contextmanager
def nginx_in_front_of(edge_url: str, conf: Path) -> Iterator[dict]:
    """Debian's nginx with deploy/nginx's configuration, installed into `conf`, in front of
    the edge at `edge_url`, until the block ends."""
    nginx = system.require("nginx")
    system.require("openssl")
    (conf / "tmp").mkdir()
    env = {"AISTACK_TLS_NAMES": "localhost,127.0.0.1", "PATH": "/usr/bin:/bin:/usr/sbin"}
    subprocess.run([NGINX / "install.sh", conf], env=env, check=True, capture_output=True)
    token = subprocess.run(
        [NGINX / "add-token.sh", "tester", conf], check=True, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    site = conf / "conf.d" / "aistack.conf"
    text = site.read_text()
    assert text.count("listen 8443 ssl;") == text.count("server 127.0.0.1:11500;") == 1
    text = text.replace("listen 8443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    site.write_text(text.replace("127.0.0.1:11500", edge_url.removeprefix("http://")))
    (conf / "nginx.conf").write_text(
        MAIN_CONF.format(dir=conf, user=pwd.getpwuid(os.getuid()).pw_name)
    )
    check = subprocess.run(
        [nginx, "-t", "-p", conf, "-c", conf / "nginx.conf"], capture_output=True
    )
    assert check.returncode == 0, check.stderr.decode()
    proc = subprocess.Popen([nginx, "-p", conf, "-c", conf / "nginx.conf"], stderr=subprocess.PIPE)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while not _answers(url, conf / "aistack" / "tls.crt"):
            assert proc.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield {"url": url, "ca": str(conf / "aistack" / "tls.crt"), "token": token}
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str, ca: Path) -> bool:
    try:
        httpx.get(url + "/health", verify=ssl.create_default_context(cafile=ca), timeout=1)
        return True
    except httpx.TransportError:
        return False


def https_client(proxy: dict) -> httpx.Client:
    """A client of `proxy` that trusts its certificate."""
    tls = ssl.create_default_context(cafile=proxy["ca"])
    return httpx.Client(base_url=proxy["url"], verify=tls, timeout=60)


@pytest.fixture
def client(proxy) -> Iterator[httpx.Client]:
    with https_client(proxy) as client:
        yield client


def bearer(proxy) -> dict[str, str]:
    return {"Authorization": f"Bearer {proxy['token']}"}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic dGVzdGVyOng="])
def test_no_valid_token_is_refused(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    r = client.get("/v1/models", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"]["provider"] == "aistack-proxy"


def test_the_token_passes(client, proxy):
    r = client.get("/v1/models", headers={**bearer(proxy), "X-Request-ID": "proxy-test-1"})
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["steered"]
    assert r.headers["X-Request-ID"] == "proxy-test-1"


def test_health_needs_no_token(client):
    assert client.get("/health").json()["status"] == "ok"


def test_events_arrive_one_by_one(client, proxy, llm):
    llm.release.clear()
    body = {"model": "steered", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    # The upstream holds its second event until released (30 s at most): a proxy that
    # buffers delivers nothing before then, and the read times out.
    timeout = httpx.Timeout(60, read=5)
    with client.stream(
        "POST", "/v1/chat/completions", json=body, headers=bearer(proxy), timeout=timeout
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(line for line in lines if line)
        assert first == 'data: {"n": 1}'
        llm.release.set()
        rest = [line for line in lines if line]
    assert rest == ['data: {"n": 2}', 'data: {"n": 3}', "data: [DONE]"]


async def test_a_realtime_session_passes_with_a_token(proxy):
    """The WebSocket upgrade of /v1/realtime goes through, behind the same token; the
    session opens (session.created needs no backend)."""
    tls = ssl.create_default_context(cafile=proxy["ca"])
    url = proxy["url"] + "/v1/realtime?intent=transcription"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, ssl=tls)
        assert refused.value.status == 401
        async with http.ws_connect(url, ssl=tls, headers=bearer(proxy)) as ws:
            created = await ws.receive_json(timeout=10)
    assert created["type"] == "session.created"


async def test_a_browser_offers_its_token_as_a_subprotocol(proxy):
    """A browser cannot set Authorization on a WebSocket: its token, offered as the
    subprotocol `openai-insecure-api-key.<token>` beside `realtime`, passes; the handshake
    selects `realtime` (a browser fails one that selects none); a wrong key is refused."""
    tls = ssl.create_default_context(cafile=proxy["ca"])
    url = proxy["url"] + "/v1/realtime?intent=transcription"
    async with aiohttp.ClientSession() as http:
        wrong = ("realtime", "openai-insecure-api-key.wrong")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, ssl=tls, protocols=wrong)
        assert refused.value.status == 401
        offered = (f"openai-insecure-api-key.{proxy['token']}", "realtime")
        async with http.ws_connect(url, ssl=tls, protocols=offered) as ws:
            assert ws.protocol == "realtime"
            created = await ws.receive_json(timeout=10)
    assert created["type"] == "session.created"


async def test_a_client_secret_opens_one_session_and_nothing_else(proxy):
    """A secret minted with a client token (POST /v1/realtime/client_secrets) opens one
    realtime session without the token, as a subprotocol or a bearer token; used once, it
    is refused; it opens no other route."""
    tls = ssl.create_default_context(cafile=proxy["ca"])
    url = proxy["url"] + "/v1/realtime?intent=transcription"
    async with aiohttp.ClientSession() as http:

        async def mint() -> str:
            async with http.post(
                proxy["url"] + "/v1/realtime/client_secrets",
                json={"session": {"type": "transcription"}},
                ssl=tls,
                headers=bearer(proxy),
            ) as r:
                assert r.status == 200, await r.text()
                return (await r.json())["value"]

        secret = await mint()
        offered = ("realtime", f"openai-insecure-api-key.{secret}")
        async with http.ws_connect(url, ssl=tls, protocols=offered) as ws:
            assert ws.protocol == "realtime"
            assert (await ws.receive_json(timeout=10))["type"] == "session.created"
        with pytest.raises(aiohttp.WSServerHandshakeError) as used:
            await http.ws_connect(url, ssl=tls, protocols=offered)
        assert used.value.status == 401
        secret = await mint()
        async with http.get(
            proxy["url"] + "/v1/models", ssl=tls, headers={"Authorization": f"Bearer {secret}"}
        ) as r:
            assert r.status == 401
        as_bearer = {"Authorization": f"Bearer {secret}"}
        async with http.ws_connect(url, ssl=tls, headers=as_bearer) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "session.created"


def test_a_50_mb_upload_passes(client, proxy, llm):
    content = "x" * (50 * 1024 * 1024)
    body = json.dumps({"model": "steered", "messages": [{"role": "user", "content": content}]})
    r = client.post(
        "/v1/chat/completions",
        content=body.encode(),
        headers={**bearer(proxy), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text[:500]
    assert r.json()["received"] >= len(body)


ADMIN_TOKEN = "proxy-admin-token"


@pytest.fixture(scope="module")
def admin_proxy(module_services, llm, tmp_path_factory) -> Iterator[dict]:
    """nginx in front of an edge with an admin token that trusts it as its proxy."""
    token_edge = module_services.start(
        "aistack_edge",
        env={
            "AISTACK_LLM_UPSTREAMS": llm.url,
            "AISTACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "AISTACK_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    with nginx_in_front_of(token_edge.url, tmp_path_factory.mktemp("nginx-admin")) as started:
        yield started


@pytest.fixture
def admin_client(admin_proxy) -> Iterator[httpx.Client]:
    with https_client(admin_proxy) as client:
        yield client


@pytest.mark.parametrize("path", ["/admin/api/status", "/admin/api/observability", "/metrics"])
def test_a_client_token_opens_no_admin_nor_metrics_without_an_admin_token(client, proxy, path):
    """The edge has no admin token and listens on loopback; nginx runs on the same machine,
    so the edge's peer is loopback, but the client is not (nor does the edge trust nginx)."""
    r = client.get(path, headers=bearer(proxy))
    assert r.status_code == 403, r.text[:300]
    assert r.json()["error"]["kind"] == "malformed"
    assert client.get(path).status_code == 403  # nor with no token at all


def test_admin_works_through_the_proxy_with_its_own_token(admin_client, admin_proxy):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert admin_client.get("/admin/api/status").status_code == 401
    assert admin_client.get("/admin/api/status", headers=bearer(admin_proxy)).status_code == 401
    status = admin_client.get("/admin/api/status", headers=admin)
    assert status.status_code == 200 and "slot" in status.json()
    assert admin_client.get("/admin").status_code == 200  # the page asks for the token
    url = admin_proxy["url"]
    # A change from the page's own origin (scheme, host and port) passes ...
    change = admin_client.post(
        "/admin/api/observability", json={"metrics": True}, headers={**admin, "Origin": url}
    )
    assert change.status_code == 200, change.text
    # ... from the same host on another port or scheme, it does not.
    port = url.rpartition(":")[2]
    for other in ("https://127.0.0.1", f"http://127.0.0.1:{port}", "https://localhost:" + port):
        refused = admin_client.post(
            "/admin/api/observability", json={"metrics": True}, headers={**admin, "Origin": other}
        )
        assert refused.status_code == 403, other
        assert "cross-site" in refused.json()["error"]["message"]


def test_metrics_through_the_proxy_need_the_admin_token(admin_client, admin_proxy):
    assert admin_client.get("/metrics").status_code == 401
    assert admin_client.get("/metrics", headers=bearer(admin_proxy)).status_code == 401
    r = admin_client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200 and "aistack_requests_total" in r.text


def test_any_name_of_the_box_passes_the_loopback_edges_host_check(client, proxy):
    """nginx names the edge `localhost`: a LAN client may call the box by any name."""
    r = client.get("/v1/models", headers={**bearer(proxy), "Host": "gpu-box.lan:8443"})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def proxy_of_nothing(tmp_path_factory) -> Iterator[dict]:
    """nginx in front of a port where no edge listens."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    with nginx_in_front_of(nowhere, tmp_path_factory.mktemp("nginx-nothing")) as started:
        yield started


def test_the_proxys_own_errors_are_the_envelope(proxy_of_nothing, proxy):
    """nginx answered its own errors with HTML pages: the edge down (502), a head too
    large to read (400/494). Each is the envelope, with nginx's request id."""
    with https_client(proxy_of_nothing) as client:
        down = client.get("/health")
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"
    assert down.headers["Content-Type"] == "application/json"
    error = envelope(down.content, "network")
    assert error["provider"] == "aistack-proxy"
    assert down.headers["X-Request-ID"] in error["message"]
    with https_client(proxy) as client:
        unreadable = client.get("/health", headers={"X-Huge": "x" * 40_000})
    assert unreadable.status_code == 400
    envelope(unreadable.content, "malformed")


def raw_answer(proxy: dict, request: bytes, tls: bool = True) -> bytes:
    """What nginx answers to `request` sent as is (over TLS unless told otherwise)."""
    host, port = proxy["url"].removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        if tls:
            context = ssl.create_default_context(cafile=proxy["ca"])
            sock = context.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.parametrize(
    ("request_bytes", "tls", "status", "kind"),
    [
        (
            b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
            True,
            414,
            "malformed",
        ),
        (
            b"POST /v1/models HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
            True,
            501,
            "malformed",
        ),
        (b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n", False, 400, "malformed"),
        (b"GET /health HTTP/2.5\r\nHost: localhost\r\n\r\n", True, 505, "malformed"),
        (
            b"GET /_aistack/not_found HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            True,
            404,
            "malformed",
        ),
    ],
    ids=[
        "URI too long",
        "unknown Transfer-Encoding",
        "plain HTTP to TLS",
        "HTTP version",
        "its own internal path",
    ],
)
def test_every_answer_of_the_proxys_own_is_the_envelope(proxy, request_bytes, tls, status, kind):
    answer = raw_answer(proxy, request_bytes, tls)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head
    assert b"Content-Type: application/json" in head, head
    assert envelope(body, kind)["provider"] == "aistack-proxy"

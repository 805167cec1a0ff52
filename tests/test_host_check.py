"""DNS rebinding: a loopback-bound edge (a real process) answers only to localhost names,
loopback addresses and AISTACK_ALLOWED_HOSTS, and refuses any other Host before the body."""

import httpx
import pytest

from aistack_testing.edge import answer_to_head, envelope


def get(url: str, host: str) -> httpx.Response:
    return httpx.get(url + "/v1/models", headers={"Host": host}, timeout=10)


@pytest.fixture(scope="module")
def edge(module_services):
    return module_services.start("aistack_edge", env={"AISTACK_ALLOWED_HOSTS": "GPU-Box.lan"})


LOCAL = ["localhost", "LOCALHOST.:80", "app.localhost", "127.0.0.1", "127.9.9.9:1", "[::1]:80"]


@pytest.mark.parametrize("host", [*LOCAL, "gpu-box.lan:8443", "gpu-box.lan"])
def test_local_and_configured_names_pass(edge, host):
    r = get(edge.url, host)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:11500", "0.0.0.0", "192.168.1.5", "[::2]"]
)
def test_other_names_are_refused_with_the_envelope(edge, host):
    r = get(edge.url, host)
    assert r.status_code == 400
    assert "does not answer to the host" in envelope(r.content, "malformed")["message"]
    assert r.headers["X-Request-ID"]


def test_refused_before_the_body(edge):
    """Headers promising 50 MB, no body sent: the answer comes at once."""
    head = answer_to_head(
        edge.url,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: attacker.example\r\n"
        b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 400"), head[:200]


def test_an_edge_beyond_loopback_checks_no_host(services):
    edge = services.start("aistack_edge", env={"AISTACK_HOST": "0.0.0.0"})
    assert get(edge.url, "gpu-box.example").status_code == 200

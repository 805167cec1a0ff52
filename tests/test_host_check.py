"""DNS rebinding: the edge (a real process) answers only to localhost names, loopback
addresses, the address a connection reached and AISTACK_ALLOWED_HOSTS, and refuses any
other Host before the body, wherever it listens."""

import subprocess

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


def lan_address() -> str:
    """This machine's first address beyond loopback (IPv4)."""
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True)
    addresses = [a for a in found.stdout.split() if "." in a and not a.startswith("127.")]
    assert addresses, "this machine has no IPv4 address beyond loopback"
    return addresses[0]


@pytest.fixture(scope="module")
def lan_edge(module_services):
    return module_services.start("aistack_edge", env={"AISTACK_HOST": "0.0.0.0"})


@pytest.mark.parametrize("host", ["gpu-box.example", "attacker.example:11500", "192.0.2.99"])
def test_an_edge_beyond_loopback_checks_the_host_too(lan_edge, host):
    r = get(lan_edge.url, host)
    assert r.status_code == 400, r.text
    assert "does not answer to the host" in envelope(r.content, "malformed")["message"]


def test_the_address_a_client_reached_and_the_defaults_pass(lan_edge):
    port = lan_edge.url.rsplit(":", 1)[1]
    address = lan_address()
    r = httpx.get(f"http://{address}:{port}/v1/models", timeout=10)  # Host: that address
    assert r.status_code == 200, r.text
    for name in ("edge", "edge-cpu:11500", "aistack", "localhost"):
        assert get(lan_edge.url, name).status_code == 200, name


def test_a_refusal_quotes_a_long_host_only_in_part(edge):
    r = get(edge.url, "a" * 4000 + ".example")
    assert r.status_code == 400
    assert len(envelope(r.content, "malformed")["message"]) < 300

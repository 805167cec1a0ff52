"""Admin that fails closed, on a real edge process: an empty token is no token, and the
client is judged by the real peer and what a trusted proxy forwards, never by what any
client writes in a forwarding header."""

import json
import time

import httpx
import pytest

from aistack_testing.edge import envelope


def status_of(url: str, **headers: str) -> int:
    return httpx.get(url + "/admin/api/status", headers=headers, timeout=10).status_code


def test_an_empty_token_is_no_token(services):
    edge = services.start("aistack_edge", env={"AISTACK_ADMIN_TOKEN": ""})
    for authorization in ("Bearer", "bearer"):  # an empty Bearer
        r = httpx.post(
            edge.url + "/admin/api/observability",
            json={"capture": True, "metrics": False},
            headers={"Authorization": authorization},
            timeout=10,
        )
        assert r.status_code == 403, authorization
        assert "AISTACK_ADMIN_TOKEN is not set" in envelope(r.content, "malformed")["message"]
    state = httpx.get(edge.url + "/admin/api/observability", timeout=10).json()
    assert state["metrics"] is True
    assert "AISTACK_ADMIN_TOKEN is empty: treated as unset" in edge.output()


@pytest.mark.parametrize(
    "header", ["X-Forwarded-For", "X-Real-IP", "Forwarded"], ids=lambda h: h.lower()
)
def test_a_forwarded_request_is_not_local_unless_its_proxy_is_trusted(services, header):
    """No token, loopback: a request that came through a proxy the edge does not trust is
    refused the admin reads and /metrics, whatever client it names."""
    edge = services.start("aistack_edge")
    assert status_of(edge.url) == 200  # the machine's own client, directly
    value = "for=127.0.0.1" if header == "Forwarded" else "127.0.0.1"
    r = httpx.get(edge.url + "/admin/api/status", headers={header: value}, timeout=10)
    assert r.status_code == 403 and "own clients" in envelope(r.content)["message"]
    metrics = httpx.get(edge.url + "/metrics", headers={header: value}, timeout=10)
    assert metrics.status_code == 403
    assert httpx.get(edge.url + "/metrics", timeout=10).status_code == 200


def test_a_trusted_proxy_names_the_client_by_its_right_most_hop(services):
    edge = services.start("aistack_edge", env={"AISTACK_TRUSTED_PROXIES": "127.0.0.0/8, ::1"})
    assert status_of(edge.url, **{"X-Forwarded-For": "127.0.0.1"}) == 200
    assert status_of(edge.url, **{"X-Forwarded-For": "192.168.1.20"}) == 403
    # What a LAN client wrote itself sits left of what the proxy added.
    assert status_of(edge.url, **{"X-Forwarded-For": "127.0.0.1, 192.168.1.20"}) == 403
    assert status_of(edge.url, **{"X-Forwarded-For": "not-an-address"}) == 403
    assert status_of(edge.url, **{"X-Real-IP": "127.0.0.1"}) == 403  # no X-Forwarded-For


def test_the_origin_of_a_change_is_scheme_host_and_port(services):
    token = "guard-token"
    edge = services.start("aistack_edge", env={"AISTACK_ADMIN_TOKEN": token})
    port = edge.url.rpartition(":")[2]

    def change(origin: str, host: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}", "Origin": origin}
        if host is not None:
            headers["Host"] = host
        return httpx.post(
            edge.url + "/admin/api/observability", json={}, headers=headers, timeout=10
        ).status_code

    assert change(f"http://127.0.0.1:{port}") == 200
    assert change(f"HTTP://127.0.0.1:{port}") == 200
    assert change(f"https://127.0.0.1:{port}") == 403
    assert change(f"http://127.0.0.1:{int(port) + 1}") == 403
    assert change("null") == 403
    # A Host with no port is port 80: a page on port 80 is not the edge's origin.
    assert change("http://127.0.0.1:80", host="127.0.0.1:80") == 200
    assert change(f"http://127.0.0.1:{port}", host="127.0.0.1") == 403


def test_the_access_log_names_the_client_a_trusted_proxy_forwarded(services, tmp_path):
    edge = services.start(
        "aistack_edge",
        env={"AISTACK_TRUSTED_PROXIES": "127.0.0.1", "AISTACK_ACCESS_LOG_DIR": str(tmp_path)},
    )
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    for request_id, headers in (("direct", {}), ("proxied", forwarded)):
        httpx.get(edge.url + "/health", headers={"X-Request-ID": request_id, **headers})
    deadline = time.monotonic() + 5
    clients: dict[str, str] = {}
    while len(clients) < 2:
        assert time.monotonic() < deadline, clients
        time.sleep(0.05)
        lines = [json.loads(x) for f in tmp_path.glob("*.jsonl") for x in f.open()]
        clients = {
            x["request_id"]: x["client"] for x in lines if x["request_id"] in ("direct", "proxied")
        }
    assert clients == {"direct": "127.0.0.1", "proxied": "198.51.100.7"}

"""Cross-site requests (a real edge process): a request whose Origin is neither the edge's
own nor one of AISTACK_ALLOWED_ORIGINS is refused with 403 and the envelope, before its
body, a WebSocket upgrade too; the edge's own origin (the admin page's) and an allowed
one pass, the allowed one with the CORS answers its page needs.
(tests/test_origins_browser.py tries the same from a real browser.)"""

import httpx
import pytest

from aistack_testing.edge import answer_to_head, envelope

ALLOWED = "https://app.example:8443"


@pytest.fixture(scope="module")
def edge(module_services):
    env = {"AISTACK_ALLOWED_ORIGINS": f"{ALLOWED}, http://Tool.Example."}
    return module_services.start("aistack_edge", env=env)


def models(url: str, origin: str, **headers: str) -> httpx.Response:
    return httpx.get(url + "/v1/models", headers={"Origin": origin, **headers}, timeout=10)


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://localhost:1", "https://app.example"]
)
def test_another_origin_is_refused_with_the_envelope(edge, origin):
    r = models(edge.url, origin)
    assert r.status_code == 403, r.text
    assert "cross-site request refused" in envelope(r.content, "malformed")["message"]
    assert "Access-Control-Allow-Origin" not in r.headers


def test_the_edges_own_origin_passes(edge):
    own = edge.url  # http://127.0.0.1:<port>, as the admin page served from it sends
    assert models(edge.url, own).status_code == 200
    port = edge.url.rsplit(":", 1)[1]
    assert models(edge.url, f"http://localhost:{port}", Host=f"localhost:{port}").status_code == 200


@pytest.mark.parametrize("origin", [ALLOWED, "http://tool.example", "http://TOOL.example:80"])
def test_an_allowed_origin_passes_with_cors(edge, origin):
    r = models(edge.url, origin)
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == origin
    preflight = httpx.options(
        edge.url + "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type, authorization"


def cross_site(edge, request_line: str, *headers: str) -> bytes:
    """The edge's answer to the head alone of a request from evil.example's page."""
    head = [request_line, "Host: localhost", "Origin: https://evil.example", *headers]
    return answer_to_head(edge.url, ("\r\n".join(head) + "\r\n\r\n").encode())


def test_a_cross_site_form_is_refused_before_its_body(edge):
    """A form POST promising 50 MB, no body sent: the 403 comes at once."""
    answer = cross_site(
        edge,
        "POST /v1/audio/transcriptions HTTP/1.1",
        "Content-Type: multipart/form-data; boundary=b",
        "Content-Length: 52428800",
    )
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


def test_a_cross_site_websocket_is_refused(edge):
    answer = cross_site(
        edge,
        "GET /v1/realtime?intent=transcription HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    )
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b'"kind": "malformed"' in answer


def test_a_long_origin_is_quoted_only_in_part(edge):
    r = models(edge.url, "https://" + "a" * 5000 + ".example")
    assert r.status_code == 403
    assert len(envelope(r.content, "malformed")["message"]) < 300


def test_a_bad_allowed_origin_stops_the_edge_at_start():
    from pydantic import ValidationError

    from aistack_edge.config import EdgeSettings

    with pytest.raises(ValidationError, match="not an origin"):
        EdgeSettings(allowed_origins="app.example")
    assert EdgeSettings(allowed_origins="*").allowed_origins == ["*"]

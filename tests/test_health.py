"""/health and /health/ready over real processes: the edge's liveness with the state of
each backend and of the lease store, and readiness that fails while a configured
capability has no backend up or Redis is unreachable."""

import time

import httpx
import pytest

from aistack_testing.edge import envelope
from aistack_testing.processes import free_port

VERSION = "0.0.1"


def nowhere() -> str:
    """A base URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def health(edge) -> dict:
    r = httpx.get(edge.url + "/health", timeout=5)
    assert r.status_code == 200
    return r.json()


def eventually_health(edge, done, timeout_s: float = 10) -> dict:
    """/health until `done(body)`: its first call only starts the backends' probe."""
    deadline = time.monotonic() + timeout_s
    while not done(body := health(edge)):
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    return body


@pytest.fixture(scope="module")
def dead_tts() -> str:
    return nowhere()


@pytest.fixture(scope="module")
def edge(module_services, whisper, redis_server, dead_tts):
    """asr-whisper up, a second ASR backend and the only TTS backend down, on Redis."""
    return module_services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": f"{whisper.url},{nowhere()}",
            "AISTACK_TTS_BACKENDS": dead_tts,
            "AISTACK_REDIS_URL": redis_server.url,
            "AISTACK_MODELS_CACHE_S": "0",
        },
    )


def test_health_is_ok_and_tells_each_backend_and_the_lease_store(edge, whisper, dead_tts):
    body = eventually_health(edge, lambda body: body["backends"])
    assert (body["status"], body["version"]) == ("ok", VERSION)
    states = {(b["capability"], b["url"]): b["up"] for b in body["backends"]}
    assert states[("asr", whisper.url)] is True
    assert states[("tts", dead_tts)] is False
    assert sorted(up for (capability, _), up in states.items() if capability == "asr") == [
        False,
        True,
    ]
    assert body["lease_store"] == {"kind": "redis", "reachable": True}


def test_not_ready_while_a_configured_capability_has_no_backend_up(edge, dead_tts):
    r = httpx.get(edge.url + "/health/ready", timeout=5)
    assert r.status_code == 503
    message = envelope(r.content, "network")["message"]
    assert f"no tts backend is up ({dead_tts})" in message
    assert "asr" not in message  # one ASR backend up is enough


def test_ready_with_nothing_configured_and_the_in_process_lease(services):
    edge = services.start("aistack_edge")
    r = httpx.get(edge.url + "/health/ready", timeout=5)
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "backends": [],
        "lease_store": {"kind": "memory", "reachable": True},
    }
    assert health(edge)["lease_store"] == {"kind": "memory", "reachable": True}


def test_an_unreachable_redis_is_reported_and_not_ready(services, whisper):
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": whisper.url,
            "AISTACK_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    body = health(edge)
    assert body["status"] == "ok"
    assert body["lease_store"] == {"kind": "redis", "reachable": False}
    r = httpx.get(edge.url + "/health/ready", timeout=5)
    assert r.status_code == 503
    assert envelope(r.content, "network")["message"] == (
        "not ready: the lease store (Redis) is unreachable"
    )


def test_a_killed_backend_turns_down_and_the_edge_not_ready(services):
    backend = services.start("aistack_asr_whisper", timeout=120)
    edge = services.start(
        "aistack_edge", env={"AISTACK_ASR_BACKENDS": backend.url, "AISTACK_MODELS_CACHE_S": "0"}
    )
    assert httpx.get(edge.url + "/health/ready", timeout=5).status_code == 200
    backend.kill()
    assert httpx.get(edge.url + "/health/ready", timeout=5).status_code == 503
    body = health(edge)
    assert body["status"] == "ok"
    assert body["backends"] == [{"capability": "asr", "url": backend.url, "up": False}]

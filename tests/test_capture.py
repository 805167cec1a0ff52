"""Payload capture that keeps no more than it should, on a real edge process: a voice
upload by its size only, no body read from a request refused before it, query values
redacted, folders 0700 and files 0600, and a bounded writer queue that drops and counts."""

import datetime as dt
import json
import stat
import time
from pathlib import Path

import httpx
import pytest
import websockets

from aistack_edge.observability.capture import REDACTED, Capture, Captured
from aistack_testing.edge import answer_to_head


@pytest.fixture
def capturing_edge(services, tmp_path):
    """An edge with capture on from the start and no backend (TTS answers 503)."""
    edge = services.start(
        "aistack_edge",
        env={"AISTACK_CAPTURE": "true", "AISTACK_CAPTURE_DIR": str(tmp_path / "capture")},
    )
    edge.capture = tmp_path / "capture"
    return edge


def captured(directory: Path, request_id: str, limit_s: float = 5.0) -> Path:
    """The capture folder of `request_id`, once it is in place."""
    deadline = time.monotonic() + limit_s
    while not (found := [f for f in directory.iterdir() if f.name.endswith("-" + request_id)]):
        assert time.monotonic() < deadline, f"{request_id} was not captured"
        time.sleep(0.05)
    (folder,) = found
    return folder


def test_a_voice_upload_is_recorded_by_its_size_only(capturing_edge):
    voice = b"RIFF-someone's-voice-" * 500
    r = httpx.post(
        capturing_edge.url + "/v1/audio/voices",
        files={"audio_sample": ("me.wav", voice, "audio/wav")},
        data={"name": "me"},
        headers={"X-Request-ID": "voice-1"},
        timeout=10,
    )
    assert r.status_code == 503  # no TTS backend; the body was read whole first
    folder = captured(capturing_edge.capture, "voice-1")
    assert (folder / "request.body").read_bytes() == b""
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["request_bytes"] > len(voice)
    everything = b"".join(f.read_bytes() for f in folder.iterdir())
    assert b"someone's-voice" not in everything


def test_a_json_body_is_still_kept(capturing_edge):
    body = {"model": "piper", "input": "hello there", "voice": "alloy"}
    r = httpx.post(
        capturing_edge.url + "/v1/audio/speech",
        json=body,
        headers={"X-Request-ID": "json-1"},
        timeout=10,
    )
    assert r.status_code == 503
    folder = captured(capturing_edge.capture, "json-1")
    assert json.loads((folder / "request.body").read_bytes()) == body


def test_a_request_refused_before_its_body_is_answered_without_it(capturing_edge):
    """Headers promising 50 MB to a route that does not exist, and no body: the 404
    comes at once, and capture records what there is without waiting for the rest."""
    head = answer_to_head(
        capturing_edge.url,
        b"POST /v1/nothing-here HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: early-1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n",
        timeout=5,
    )
    assert head.startswith(b"HTTP/1.1 404"), head[:200]
    folder = captured(capturing_edge.capture, "early-1")
    assert (folder / "request.body").read_bytes() == b""


def test_query_values_are_redacted_and_files_are_private(capturing_edge):
    r = httpx.get(
        capturing_edge.url + "/v1/models?api_key=sk-in-query&x=1&flag",
        headers={"X-Request-ID": "query-1"},
        timeout=10,
    )
    assert r.status_code == 200
    folder = captured(capturing_edge.capture, "query-1")
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["path"] == f"/v1/models?api_key={REDACTED}&x={REDACTED}&flag={REDACTED}"
    assert b"sk-in-query" not in b"".join(f.read_bytes() for f in folder.iterdir())
    for directory in (capturing_edge.capture, folder):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for file in folder.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_a_full_queue_drops_and_counts(tmp_path):
    """The writer thread is slower than 500 submissions in a row: with 4 places in its
    queue, most are dropped and counted, and every one is either written or counted."""
    capture = Capture(tmp_path, 1024, 3600, 10**9, max_queued=4)
    now = dt.datetime.now(dt.UTC)
    kept = 0
    try:
        for n in range(500):
            item = Captured(f"q{n}", now, "GET", "/", 200, [], [], b"", 0, b"x" * 100, 100)
            kept += capture.submit(item)
    finally:
        capture.close()
    written = [f for f in tmp_path.iterdir() if f.is_dir()]
    assert capture.dropped > 0 and kept + capture.dropped == 500
    assert len(written) == kept


async def test_a_realtime_client_secret_is_not_kept(capturing_edge):
    """A minted client secret (the `value` of POST /v1/realtime/client_secrets) and the
    key a browser offers as a subprotocol are redacted from what capture keeps."""
    r = httpx.post(
        capturing_edge.url + "/v1/realtime/client_secrets",
        json={"session": {"type": "transcription"}},
        headers={"X-Request-ID": "secret-1"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    secret = r.json()["value"]
    url = capturing_edge.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    offered = ["realtime", f"openai-insecure-api-key.{secret}"]
    async with websockets.connect(
        url, subprotocols=offered, additional_headers={"X-Request-ID": "secret-2"}
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
    folders = [captured(capturing_edge.capture, rid) for rid in ("secret-1", "secret-2")]
    kept = b"".join(f.read_bytes() for folder in folders for f in folder.iterdir())
    assert REDACTED.encode() in kept
    assert secret.encode() not in kept

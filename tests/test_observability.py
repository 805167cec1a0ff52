"""Observability end to end: a real edge process on a real Redis in front of the real
asr-whisper backend. /metrics counts known traffic exactly (busy and hang-ups too),
the access log has one matching JSON line per request, spans written by both processes
chain edge → slot → backend call → backend (decode, load, inference), capture redacts
and retention deletes, and the admin API refuses what it must."""

import asyncio
import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from aistack_edge.observability.access_log import AccessRecord, line_of
from aistack_edge.observability.capture import REDACTED, Capture, Captured
from aistack_testing.edge import envelope

TOKEN = "s3cret-admin-token"
SLOT_KEY = "aistack:gpu-slot"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text page: (name, labels) → value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(page: dict, name: str, **labels: str) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def observed_edge(services, whisper, redis_url, tmp_path):
    """A fresh edge (fresh counters) with the access log, trace file, capture dir and an
    admin token; asr-whisper writes its spans to a file of its own."""
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": whisper.url,
            "AISTACK_REDIS_URL": redis_url,
            "AISTACK_PROBE_TIMEOUT_S": "5",
            "AISTACK_ACCESS_LOG_DIR": str(tmp_path / "access"),
            "AISTACK_TRACE_FILE": str(tmp_path / "edge-spans.jsonl"),
            "AISTACK_CAPTURE_DIR": str(tmp_path / "capture"),
            "AISTACK_ADMIN_TOKEN": TOKEN,
        },
    )
    edge.dir = tmp_path
    return edge


@pytest.fixture(scope="module")
def whisper(module_services, tmp_path_factory):
    """asr-whisper with its spans in a file."""
    spans = tmp_path_factory.mktemp("whisper") / "spans.jsonl"
    backend = module_services.start(
        "aistack_asr_whisper", env={"AISTACK_TRACE_FILE": str(spans)}, timeout=120
    )
    backend.spans = spans
    return backend


async def transcribe(
    url: str, wav: Path, request_id: str, **headers: str
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", wav.read_bytes(), filename="a.wav")
    form.add_field("model", "whisper-tiny.en")
    async with aiohttp.request(
        "POST",
        url + "/v1/audio/transcriptions",
        data=form,
        headers={"X-Request-ID": request_id, **headers},
    ) as r:
        await r.read()
        return r


async def scrape(url: str) -> dict:
    async with aiohttp.request("GET", url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        return samples(await r.text())


async def test_metrics_count_known_traffic(observed_edge, speech_wav, long_wav, redis_url):
    url = observed_edge.url
    for n in range(2):
        assert (await transcribe(url, speech_wav, f"ok-{n}")).status == 200
    async with aiohttp.request("GET", url + "/v1/models") as r:
        assert r.status == 200
    async with aiohttp.request("GET", url + "/nowhere") as r:
        assert r.status == 404
    # Busy: another holder has the slot.
    store = redis.Redis.from_url(redis_url)
    store.set(SLOT_KEY, "someone-else other-edge", px=60_000)
    busy = await transcribe(url, speech_wav, "busy-1")
    assert busy.status == 503 and busy.headers["Retry-After"]
    store.delete(SLOT_KEY)
    # Disconnect: hang up on a long transcription once the slot is held.
    task = asyncio.create_task(transcribe(url, long_wav, "gone-1"))
    deadline = time.monotonic() + 30
    while store.get(SLOT_KEY) is None:
        assert time.monotonic() < deadline, "the long transcription never took the slot"
        await asyncio.sleep(0.02)
    page = await scrape(url)
    assert value(page, "aistack_slot_holder", capability="asr", model="whisper-tiny.en") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 10
    while store.get(SLOT_KEY) is not None:
        assert time.monotonic() < deadline, "the slot was not released after the hang-up"
        await asyncio.sleep(0.02)
    asr = {"capability": "asr", "model": "whisper-tiny.en"}
    # The hang-up is counted when its handler ends, which may come after the release.
    while (
        value(page := await scrape(url), "aistack_requests_total", **asr, outcome="disconnect") < 1
    ):
        assert time.monotonic() < deadline, "the hang-up was not counted"
        await asyncio.sleep(0.02)
    assert value(page, "aistack_requests_total", **asr, outcome="2xx") == 2
    assert value(page, "aistack_requests_total", **asr, outcome="busy") == 1
    assert value(page, "aistack_requests_total", **asr, outcome="disconnect") == 1
    assert value(page, "aistack_requests_total", capability="models", model="", outcome="2xx") == 1
    assert value(page, "aistack_requests_total", capability="other", model="", outcome="4xx") == 1
    assert value(page, "aistack_request_duration_seconds_count", capability="asr") == 4
    assert value(page, "aistack_slot_wait_seconds_count", capability="asr") == 4
    assert value(page, "aistack_slot_hold_seconds_count", capability="asr") == 3
    assert value(page, "aistack_slot_holder", **asr) == 0
    audio = value(page, "aistack_asr_audio_seconds_total", model="whisper-tiny.en")
    assert 8 < audio < 16  # two ~5 s clips
    assert value(page, "aistack_asr_real_time_factor_count", model="whisper-tiny.en") == 2
    backend = {"capability": "asr", "url": observed_edge_backend(page)}
    assert value(page, "aistack_backend_up", **backend) == 1
    restarts = ("aistack_backend_restarts_total", frozenset(backend.items()))
    assert page[restarts] == 0  # read its process start time once, and no other since

    # The access log: one line per request above (the scrapes included), matching.
    lines = access_lines(observed_edge.dir / "access", wait_for=9)  # /health included
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["ok-0"]["status"] == 200 and by_id["ok-0"]["capability"] == "asr"
    assert by_id["ok-0"]["model"] == "whisper-tiny.en" and by_id["ok-0"]["bytes_in"] > 100_000
    assert by_id["ok-0"]["bytes_out"] > 10 and by_id["ok-0"]["slot_wait_ms"] >= 0
    assert by_id["busy-1"]["status"] == 503 and by_id["busy-1"]["outcome"] == "busy"
    assert by_id["gone-1"]["status"] == 499 and by_id["gone-1"]["outcome"] == "disconnect"
    paths = sorted(line["path"] for line in lines)
    assert paths.count("/v1/audio/transcriptions") == 4 and paths.count("/metrics") == 2
    assert "/nowhere" in paths and "/v1/models" in paths
    for line in lines:
        assert set(line) >= {
            "ts", "request_id", "method", "path", "status", "capability", "model",
            "latency_ms", "slot_wait_ms", "bytes_in", "bytes_out", "client",
        }  # fmt: skip
        assert line["client"] == "127.0.0.1"


def observed_edge_backend(page: dict) -> str:
    """The url label of the one ASR backend the page reports."""
    (url,) = [dict(labels)["url"] for name, labels in page if name == "aistack_backend_up"]
    return url


def access_lines(directory: Path, wait_for: int = 1) -> list[dict]:
    """The access log's lines, across its daily files (a run that crosses midnight UTC
    writes two), once the writer caught up: waited on for 60 s at most."""

    def lines() -> list[str]:
        return [
            line
            for path in sorted(directory.glob("access-*.jsonl"))
            for line in path.read_text().splitlines()
        ]

    deadline = time.monotonic() + 60
    while len(lines()) < wait_for and time.monotonic() < deadline:
        time.sleep(0.05)
    return [json.loads(line) for line in lines()]


def test_an_access_log_line_is_the_json_of_its_entry():
    """The line is formatted field by field, not by a JSON encoder: it must still be the
    JSON of each value, whatever the strings hold."""
    entry = AccessRecord(
        'id "1"\\\n\x01', "POST", "/v1/audio/spéech", 503, 12, 345, None, 0.0,
        "tts", "", "busy", 1.5, None,
    )  # fmt: skip
    ts = "2026-05-01T12:00:00.123+00:00"
    line = line_of(entry, ts)
    assert line.endswith("\n") and line.count("\n") == 1
    fields = entry._asdict()
    del fields["at"]
    assert json.loads(line) == {**fields, "ts": ts}
    served = entry._replace(status=200, client="127.0.0.1", latency_ms=812.4, slot_wait_ms=0.02)
    assert json.loads(line_of(served, ts))["slot_wait_ms"] == 0.02


def read_spans(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_trace_chains_edge_slot_backend_and_backend_work(observed_edge, whisper, speech_wav):
    request_id = uuid.uuid4().hex
    assert (await transcribe(observed_edge.url, speech_wav, request_id)).status == 200
    deadline = time.monotonic() + 5
    while True:  # each process writes a span when it ends, the backend's a little later
        spans = read_spans(observed_edge.dir / "edge-spans.jsonl") + read_spans(whisper.spans)
        roots = [s for s in spans if s["attributes"].get("aistack.request_id") == request_id]
        trace_ids = {s["trace_id"] for s in roots}
        spans = [s for s in spans if s["trace_id"] in trace_ids]
        if {"inference", "POST /transcribe"} <= {s["name"] for s in spans}:
            break
        assert time.monotonic() < deadline, f"spans missing: {spans}"
        await asyncio.sleep(0.05)
    (root,) = roots
    by_name = {s["name"]: s for s in spans}
    assert root["name"] == "POST /v1/audio/transcriptions" and root["parent_span_id"] is None
    assert by_name["slot.acquire"]["parent_span_id"] == root["span_id"]
    call = by_name["asr.transcribe"]
    assert call["parent_span_id"] == root["span_id"] and call["service"] == "aistack-edge"
    backend = by_name["POST /transcribe"]
    assert backend["parent_span_id"] == call["span_id"]
    assert backend["service"].startswith("aistack-asr")
    assert by_name["open"]["parent_span_id"] == backend["span_id"]
    inference = by_name["inference"]
    assert inference["parent_span_id"] == backend["span_id"]
    if "load" in by_name:  # only the first transcription of the backend's life loads
        assert by_name["load"]["parent_span_id"] == backend["span_id"]
    assert call["start_ns"] <= backend["start_ns"] <= call["end_ns"]


async def admin(url: str, method: str, body=None, token: str | None = TOKEN, **headers: str):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    kwargs = {"json": body} if body is not None else {}
    async with aiohttp.request(
        method, url + "/admin/api/observability", headers=headers, **kwargs
    ) as r:
        return r.status, await r.read()


async def test_admin_api_guards_and_toggles(observed_edge):
    url = observed_edge.url
    status, body = await admin(url, "GET")
    assert status == 200
    state = json.loads(body)
    assert state["metrics"] is True and state["access_log"] is True and state["capture"] is False
    assert (await admin(url, "GET", token=None))[0] == 401
    status, body = await admin(url, "POST", {"capture": True}, token="wrong")
    assert status == 401 and envelope(body)["kind"] == "malformed"
    status, body = await admin(url, "POST", {"capture": True}, Origin="http://evil.example")
    assert status == 403 and "cross-site" in envelope(body)["message"]
    async with aiohttp.request(
        "POST",
        url + "/admin/api/observability",
        data={"capture": "true"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as r:
        assert r.status == 415 and envelope(await r.read())["kind"] == "malformed"
    status, body = await admin(url, "POST", {"tracing": True})
    assert status == 400 and envelope(body)["kind"] == "malformed"
    status, body = await admin(url, "POST", {"metrics": False})
    assert status == 200 and json.loads(body)["metrics"] is False
    async with aiohttp.request("GET", url + "/v1/models") as r:
        assert r.status == 200
    page = await scrape(url)
    assert value(page, "aistack_requests_total", capability="models", model="", outcome="2xx") == 0


async def test_admin_changes_refused_without_a_token(services):
    edge = services.start("aistack_edge")
    status, body = await admin(edge.url, "POST", {"metrics": False}, token="anything")
    assert status == 403
    assert "AISTACK_ADMIN_TOKEN is not set" in envelope(body)["message"]
    assert json.loads((await admin(edge.url, "GET", token=None))[1])["metrics"] is True


async def test_capture_redacts_and_keeps_bodies_per_request(observed_edge):
    url = observed_edge.url
    assert (await admin(url, "POST", {"capture": True}))[0] == 200
    body = {"model": "piper", "input": "hello", "api_key": "sk-secret-1", "voice": "alloy"}
    async with aiohttp.request(
        "POST",
        url + "/v1/audio/speech",
        json=body,
        headers={
            "Authorization": "Bearer sk-secret-2",
            "Cookie": "session=sk-secret-3",
            "X-Request-ID": "..",  # a safe id to echo, not to use as a path
        },
    ) as r:
        assert r.status == 503  # no TTS backend: the envelope is the answer captured
    capture = observed_edge.dir / "capture"
    deadline = time.monotonic() + 5
    while not (folders := [f for f in capture.iterdir() if f.name.endswith("-__")]):
        assert time.monotonic() < deadline, "nothing captured"
        await asyncio.sleep(0.05)
    (folder,) = folders  # renamed into place whole
    assert folder.parent == capture
    meta = json.loads((folder / "meta.json").read_text())
    headers = dict(meta["request_headers"])
    assert headers["Authorization"] == REDACTED and headers["Cookie"] == REDACTED
    assert meta["status"] == 503 and meta["path"] == "/v1/audio/speech"
    kept = json.loads((folder / "request.body").read_text())
    assert kept == {**body, "api_key": REDACTED}
    assert envelope((folder / "response.body").read_bytes())["kind"] == "network"
    everything = b"".join(f.read_bytes() for f in capture.rglob("*") if f.is_file())
    assert b"sk-secret" not in everything


def test_capture_caps_bodies_and_retention_deletes(tmp_path):
    capture = Capture(tmp_path, max_body_bytes=100, max_age_s=3600, max_total_bytes=2500)
    now = dt.datetime.now(dt.UTC)
    try:
        for n in range(8):
            capture.submit(
                Captured(
                    f"r{n}",
                    now,
                    "POST",
                    "/v1/chat/completions",
                    200,
                    [],
                    [],
                    b'{"password": "' + b"p" * 300 + b'"}',
                    314,
                    b"x" * 1000,
                    1000,
                )
            )
    finally:
        capture.close()
    folders = sorted(tmp_path.iterdir())
    assert all((f / "response.body").stat().st_size == 100 for f in folders)
    assert (folders[0] / "request.body").read_bytes() == b'{"password": "[redacted]"'
    total = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())
    assert total <= 2500 and len(folders) < 8
    assert folders[-1].name.endswith("-r7")  # the newest stay
    old = time.time() - 7200
    for f in folders[0].iterdir():
        os.utime(f, (old, old))
    assert capture.sweep() == [folders[0].name]


async def test_tts_piper_metrics_count_its_requests(services):
    piper = services.start("aistack_tts_piper", timeout=120)
    body = {"model": "piper", "voice": "alloy", "input": "Hello there.", "response_format": "wav"}
    for _ in range(2):
        async with aiohttp.request("POST", piper.url + "/v1/audio/speech", json=body) as r:
            assert r.status == 200
            await r.read()
    async with aiohttp.request("POST", piper.url + "/v1/audio/speech", json={}) as r:
        assert r.status == 400
    page = await scrape(piper.url)
    speech = {"route": "/v1/audio/speech"}
    assert value(page, "aistack_tts_piper_requests_total", **speech, status="200") == 2
    assert value(page, "aistack_tts_piper_requests_total", **speech, status="400") == 1
    assert sum(v for (n, _), v in page.items() if n == "aistack_tts_piper_characters_total") == 24
    assert value(page, "aistack_tts_piper_synthesis_seconds_count") == 2

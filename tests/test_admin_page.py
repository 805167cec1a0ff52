"""The admin page at /admin in headless Chromium, over real processes: two edges (one
open on loopback with no admin token, one with a token, on Redis) in front of the real
asr-whisper, tts-piper and llm-llamacpp, and a backend that is down. The page loads
without console errors and shows the backends; the playground transcribes a real speech
WAV, plays synthesized speech and streams a chat answer; actions are refused without the
token and work with it; a pull from the weights panel shows its progress until the model is
present. Screenshots go to test-artifacts/admin/.

Needs Debian's `chromium` and the `playwright` package (never a downloaded browser)."""

import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from aistack_testing import system
from aistack_testing.plugin import SENTENCE
from aistack_testing.processes import free_port
from aistack_testing.speech import words_in_order
from tests.test_models_pull import HELD_AT, WHISPER, whisper_hub, whisper_on

TOKEN = "admin-page-token"
SLOT_KEY = "aistack:gpu-slot"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "admin"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
if system.which("chromium") is None:
    pytest.skip(system.reason("chromium"), allow_module_level=True)


@pytest.fixture(scope="module")
def backends(whisper, piper, llm) -> dict[str, str]:
    """The edge's backend settings; one ASR backend is down (nothing listens there)."""
    return {
        "AISTACK_ASR_BACKENDS": f"{whisper.url},http://127.0.0.1:{free_port()}",
        "AISTACK_TTS_BACKENDS": piper.url,
        "AISTACK_LLM_UPSTREAMS": llm.url,
        "AISTACK_PROBE_TIMEOUT_S": "5",
        "AISTACK_MODELS_CACHE_S": "0.5",
    }


@pytest.fixture(scope="module")
def open_edge(module_services, backends):
    """On loopback with no admin token: the page is open and read-only."""
    return module_services.start("aistack_edge", env=backends)


@pytest.fixture(scope="module")
def token_edge(module_services, backends, redis_server):
    return module_services.start(
        "aistack_edge",
        env={**backends, "AISTACK_ADMIN_TOKEN": TOKEN, "AISTACK_REDIS_URL": redis_server.url},
    )


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    """One Playwright per module: a second one on the same thread would clash with it."""
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright) -> Iterator:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def microphone(playwright, speech_wav) -> Iterator:
    """A browser whose microphone plays the speech WAV (Chromium's fake capture device)."""
    yield from _hearing(playwright, speech_wav)


def _hearing(playwright, wav: Path, loop: bool = True) -> Iterator:
    """A browser whose microphone plays `wav`, in a loop or once (then silence)."""
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            *LAUNCH_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}{'' if loop else '%noloop'}",
        ],
    )
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser, request) -> Iterator:
    yield from _page(browser, request.node.name)


@pytest.fixture
def recording_page(microphone, request) -> Iterator:
    yield from _page(microphone, request.node.name)


def _page(browser, name: str) -> Iterator:
    """A fresh page; its console errors and uncaught exceptions in `page.errors`; a
    screenshot of where it ended under test-artifacts/admin/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.set_default_timeout(60_000)
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    context.close()


def rows_of(page, selector: str) -> list[str]:
    return [row.inner_text() for row in page.locator(selector).all()]


def test_page_loads_and_shows_the_backends(page, open_edge, whisper, piper, llm):
    page.goto(open_edge.url + "/admin")
    page.wait_for_selector("#backends tr.backend >> nth=3")
    up = rows_of(page, "#backends tr.is-up")
    down = rows_of(page, "#backends tr.is-down")
    assert any(whisper.url in row and "whisper-tiny.en" in row for row in up), up
    assert any(piper.url in row for row in up), up
    assert any(llm.url in row for row in up), up
    assert len(down) == 1 and "down" in down[0], down
    assert "AISTACK_ADMIN_TOKEN" in page.inner_text("#notice")
    assert page.locator("button.evict").first.is_disabled()
    assert "free" in page.inner_text("#slot")
    page.wait_for_timeout(2500)  # a poll or so later, still no error
    assert page.errors == []


def test_playground_transcribes_an_upload(page, open_edge, speech_wav):
    page.goto(open_edge.url + "/admin")
    page.wait_for_selector("#asr-model option[value='whisper-tiny.en']", state="attached")
    page.select_option("#asr-model", "whisper-tiny.en")
    page.set_input_files("#asr-file", str(speech_wav))
    page.click("#asr-go")
    page.wait_for_function("() => document.getElementById('asr-wave').dataset.words > 0")
    text = page.inner_text("#asr-text").lower()
    assert "quick brown fox" in text and "lazy dog" in text, text
    assert page.locator("#asr-segments li").count() >= 1
    words = int(page.get_attribute("#asr-wave", "data-words"))
    assert words >= 10
    # The request shows up among the recent ones, with its status and latency.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#recent tr')]"
        ".some(r => r.innerText.includes('/v1/audio/transcriptions'))"
    )
    row = page.locator("#recent tr", has_text="/v1/audio/transcriptions").first.inner_text()
    assert "200" in row and "whisper-tiny.en" in row, row
    assert page.errors == []


def test_playground_transcribes_a_recording(recording_page, open_edge):
    page = recording_page
    page.goto(open_edge.url + "/admin")
    page.wait_for_selector("#asr-model option[value='whisper-tiny.en']", state="attached")
    page.select_option("#asr-model", "whisper-tiny.en")
    page.click("#asr-record")
    page.wait_for_function("() => document.getElementById('asr-record').innerText === 'Stop'")
    page.wait_for_timeout(5500)  # the fake microphone plays the sentence (about 5 s)
    page.click("#asr-record")
    page.wait_for_function(
        "() => document.getElementById('asr-state').innerText.startsWith('recorded')"
    )
    page.click("#asr-go")
    page.wait_for_function("() => document.getElementById('asr-wave').dataset.words > 0")
    assert "brown fox" in page.inner_text("#asr-text").lower()
    assert page.errors == []


@pytest.fixture(scope="module")
def spoken_then_silent(speech_wav, tmp_path_factory) -> Path:
    """The speech WAV between half a second and two seconds of silence: one turn for
    the server VAD."""
    with wave.open(str(speech_wav)) as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    quiet = b"\x00" * params.sampwidth * params.nchannels
    path = tmp_path_factory.mktemp("live") / "spoken-then-silent.wav"
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(quiet * (params.framerate // 2) + frames + quiet * params.framerate * 2)
    return path


@pytest.fixture(scope="module")
def live_microphone(playwright, spoken_then_silent) -> Iterator:
    # Once: no second turn is left in work when the test stops the session.
    yield from _hearing(playwright, spoken_then_silent, loop=False)


def test_live_tab_shows_the_words_as_they_are_spoken(live_microphone, open_edge, request):
    """The live tab: the microphone (Chromium's fake device playing the sentence), an
    AudioWorklet at 24 kHz, 16-bit PCM over /v1/realtime with a one-use client secret
    offered as a subprotocol; the sentence spoken appears on the page."""
    for page in _page(live_microphone, request.node.name):
        page.goto(open_edge.url + "/admin")
        page.wait_for_selector("#live-model option", state="attached")
        page.click("#live-go")
        page.wait_for_function("() => document.getElementById('live-go').innerText === 'Stop'")
        line = page.locator("#live-lines li:not(.pending)").first
        line.wait_for(timeout=120_000)
        heard = line.inner_text()
        page.click("#live-go")
        assert words_in_order(SENTENCE, heard) >= 0.6, heard
        assert page.inner_text("#live-state") == "stopped"
        assert not page.errors, page.errors
    # The utterance in work when the session closed is stopped before the slot is freed:
    # wait for that, so that the next test finds the slot free.
    deadline = time.monotonic() + 60
    while _json(open_edge.url + "/admin/api/status")["slot"]["holder"] is not None:
        assert time.monotonic() < deadline, "the slot stayed held after the session closed"
        time.sleep(0.1)


def test_playground_speaks(page, open_edge):
    page.goto(open_edge.url + "/admin")
    page.wait_for_selector("#tts-model option", state="attached")
    page.fill("#tts-input", "The admin page can speak.")
    page.click("#tts-go")
    page.wait_for_function(
        "() => (a => a.readyState >= 1 && a.duration > 0)(document.getElementById('tts-audio'))"
    )
    duration = page.eval_on_selector("#tts-audio", "a => a.duration")
    assert 0.5 < duration < 10, duration
    assert page.errors == []


def test_playground_streams_a_chat_answer(page, open_edge):
    page.goto(open_edge.url + "/admin")
    page.wait_for_selector("#chat-model option", state="attached")
    page.fill("#chat-max-tokens", "12")
    page.click("#chat-go")
    page.wait_for_function(
        "() => document.getElementById('chat-state').innerText.startsWith('done')"
    )
    assert page.inner_text("#chat-output").strip()
    chunks = int(page.inner_text("#chat-state").split("·")[1].split()[0])
    assert chunks > 1, "the answer did not stream"
    assert page.errors == []


def test_actions_need_the_token(page, token_edge, open_edge, whisper, speech_wav):
    page.goto(token_edge.url + "/admin")
    page.wait_for_selector("#login:not([hidden])")
    # Without the token, a change made from the page itself is refused.
    refused = page.evaluate(
        """async url => {
            const r = await fetch('/admin/api/evict', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({backend: url})});
            return [r.status, await r.json()];
        }""",
        whisper.url,
    )
    assert refused[0] == 401 and refused[1]["error"]["kind"] == "malformed", refused
    # Signed in, the same action works, on a model just loaded.
    load_model(whisper.url, speech_wav)
    page.fill("#token", TOKEN)
    page.click("#login button")
    row = page.locator("#backends tr.is-up", has_text=whisper.url)
    row.wait_for()
    row.locator("button.evict").click()
    page.wait_for_function(
        "() => document.getElementById('action-result').innerText.includes('evicted')"
    )
    assert whisper.url in page.inner_text("#action-result")
    row.filter(has_text="(not loaded)").wait_for(timeout=15_000)  # the page's next refresh
    # The observability toggles are live: switch metrics off and on again.
    page.uncheck("#toggles input[name=metrics]")
    page.wait_for_function("() => document.getElementById('action-result').innerText === 'saved'")
    assert _json(token_edge.url + "/admin/api/observability")["metrics"] is False
    page.check("#toggles input[name=metrics]")
    # The 401 of the load before signing in is the only console error.
    assert all("401" in error for error in page.errors), page.errors


def load_model(backend_url: str, wav: Path) -> None:
    """A transcription straight to the ASR backend: its model is in memory after it."""
    files = {
        "options": (None, '{"model": "whisper-tiny.en"}', "application/json"),
        "file": ("a.wav", wav.read_bytes(), "application/octet-stream"),
    }
    answer = httpx.post(backend_url + "/transcribe", files=files, timeout=120)
    assert answer.status_code == 200, answer.text


def _json(url: str) -> dict:
    answer = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(url: str, body: object, **headers: str) -> tuple[int, dict]:
    answer = httpx.post(url, json=body, headers=headers, timeout=30)
    return answer.status_code, answer.json()


# Sync tests: the module's browser runs Playwright's own event loop on this thread.


def test_changes_are_refused_without_the_token(open_edge, token_edge, whisper, speech_wav):
    body = {"backend": whisper.url}
    status, answer = post(open_edge.url + "/admin/api/evict", body)
    assert status == 403 and "AISTACK_ADMIN_TOKEN" in answer["error"]["message"]
    status, _ = post(token_edge.url + "/admin/api/evict", body)
    assert status == 401
    bearer = f"Bearer {TOKEN}"
    status, answer = post(
        token_edge.url + "/admin/api/evict", body, Authorization=bearer, Origin="http://evil"
    )
    assert status == 403 and "cross-site" in answer["error"]["message"]
    status, answer = post(
        token_edge.url + "/admin/api/evict", {"backend": "http://elsewhere"}, Authorization=bearer
    )
    assert status == 400 and answer["error"]["kind"] == "malformed"
    load_model(whisper.url, speech_wav)
    status, answer = post(token_edge.url + "/admin/api/evict", body, Authorization=bearer)
    assert status == 200 and answer["backend"] == whisper.url
    assert answer["evicted"] == ["whisper-tiny.en"]


def test_status_reports_the_slot_holder_and_errors(token_edge, redis_server):
    store = redis.Redis.from_url(redis_server.url)
    since_ms = int(time.time() * 1000) - 4000
    store.set(SLOT_KEY, f"feedc0de.{since_ms} asr big-model (request r-1)", px=60_000)
    try:
        bad = httpx.post(token_edge.url + "/v1/audio/speech", content=b"{", timeout=10)
        assert bad.status_code == 400
        status = _json(token_edge.url + "/admin/api/status")
    finally:
        store.delete(SLOT_KEY)
    slot = status["slot"]
    assert slot["store"] == "redis" and slot["holder"] == "asr big-model (request r-1)"
    assert 3.5 < slot["held_s"] < 30
    assert status["glance"]["errors"].get("malformed", 0) >= 1
    latest = status["recent"][0]
    assert (latest["path"], latest["status"], latest["error_kind"]) == (
        "/v1/audio/speech",
        400,
        "malformed",
    )
    assert not any(r["path"].startswith("/admin") for r in status["recent"])


def test_beyond_loopback_with_no_token_the_admin_routes_are_off(services, backends):
    edge = services.start("aistack_edge", env={**backends, "AISTACK_HOST": "0.0.0.0"})
    for path in ("/admin", "/admin/api/status", "/admin/api/observability"):
        answer = httpx.get(edge.url + path, timeout=10)
        assert answer.status_code == 403, path
        assert "beyond loopback" in answer.json()["error"]["message"]
    assert httpx.get(edge.url + "/v1/models", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator:
    yield from whisper_hub(tmp_path_factory)


@pytest.fixture(scope="module")
def weights_edge(module_services, hub, tmp_path_factory):
    """An edge with a token in front of an asr-whisper whose models folder is empty and
    whose hub is the fake one."""
    folder = tmp_path_factory.mktemp("weights")
    whisper = whisper_on(hub.url, folder / "models", folder / "whisper.log")
    edge = module_services.start(
        "aistack_edge", env={"AISTACK_ASR_BACKENDS": whisper.url, "AISTACK_ADMIN_TOKEN": TOKEN}
    )
    yield edge, whisper
    whisper.stop()


def test_the_weights_panel_pulls_a_model_and_shows_its_progress(page, weights_edge, hub):
    edge, whisper = weights_edge
    page.goto(edge.url + "/admin")
    page.fill("#token", TOKEN)
    page.click("#login button")
    row = page.locator("#weights tr.weight", has_text=WHISPER)
    row.filter(has_text="missing").wait_for()
    assert whisper.url in row.inner_text()
    hub.stall("model.bin", after=HELD_AT)  # the hub holds the big file: progress mid-way
    try:
        row.locator("button.pull").click()
        page.wait_for_function(
            """() => document.getElementById('pull-state').innerText.includes('pulling model.bin')
                && document.getElementById('pull-progress').value > 0"""
        )
        row.filter(has_text="fetching").wait_for()  # the backend's own state, polled
        assert row.locator("button.pull").is_disabled()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "weights-pull-in-progress.png", full_page=True)
    finally:
        hub.release()
    page.wait_for_function(
        "() => document.getElementById('pull-state').innerText.includes('success')",
        timeout=240_000,
    )
    row.filter(has_text="present").wait_for()
    assert page.locator("#pull-progress").is_hidden()
    # The 401 of the load before signing in is the only console error.
    assert all("401" in error for error in page.errors), page.errors

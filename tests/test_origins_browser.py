"""A web page of another site, open in the user's browser (Chromium), tries the gateway
on loopback three ways: a form POST of a WAV (a "simple" request, no CORS preflight), a
`fetch` of the same (mode no-cors: the answer is opaque, the request still goes), and
the realtime WebSocket (which CORS does not cover). None runs a workload: the edge
refuses each for its Origin, and its GPU slot is never held.

Needs Debian's `chromium` and the `playwright` package (never a downloaded browser)."""

import base64
import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aistack_testing import system
from aistack_testing.processes import free_port

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
if system.which("chromium") is None:
    pytest.skip(system.reason("chromium"), allow_module_level=True)

PAGE = """<!doctype html>
<html><body>
<form id="form" method="post" enctype="multipart/form-data" target="sink"
      action="EDGE/v1/audio/transcriptions">
  <input type="file" name="file" id="file"><input name="model" value="auto">
</form>
<iframe name="sink" id="sink"></iframe>
<script>
const wav = Uint8Array.from(atob("WAV"), c => c.charCodeAt(0));
window.results = {};
function file() { return new File([wav], "speech.wav", {type: "audio/wav"}); }

// 1. A form POST, as any page may send to any site.
const files = new DataTransfer();
files.items.add(file());
document.getElementById("file").files = files.files;
document.getElementById("sink").onload = () => { window.results.form = "loaded"; };
document.getElementById("form").submit();

// 2. fetch, no-cors: the answer can't be read, but the request runs.
const body = new FormData();
body.append("file", file());
fetch("EDGE/v1/audio/transcriptions", {method: "POST", body, mode: "no-cors"})
  .then(() => { window.results.fetch = "sent"; }, e => { window.results.fetch = String(e); });

// 3. The realtime WebSocket: what it answers can be read by this page.
const ws = new WebSocket("WS/v1/realtime?intent=transcription");
const heard = [];
ws.onmessage = m => {
  const type = JSON.parse(m.data).type;
  heard.push(type);
  if (type.endsWith("session.created")) {
    ws.send(JSON.stringify({type: "input_audio_buffer.append", audio: btoa("\\0".repeat(32000))}));
    ws.send(JSON.stringify({type: "input_audio_buffer.commit"}));
  }
  if (/completed|failed|error/.test(type)) ws.close();
};
ws.onclose = e => { window.results.ws = {code: e.code, heard}; };
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def edge(module_services, whisper):
    return module_services.start("aistack_edge", env={"AISTACK_ASR_BACKENDS": whisper.url})


@pytest.fixture(scope="module")
def other_site(edge, speech_wav) -> Iterator[str]:
    """Another origin (another port of this machine) serving PAGE."""
    page = (
        PAGE.replace("EDGE", edge.url)
        .replace("WS", edge.url.replace("http:", "ws:"))
        .replace("WAV", base64.b64encode(speech_wav.read_bytes()).decode())
        .encode()
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def counted(url: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` with `labels` on the edge's /metrics."""
    page = httpx.get(url + "/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_a_page_of_another_site_runs_no_workload(edge, other_site):
    with sync_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            tab = chromium.new_page()
            tab.goto(other_site)
            tab.wait_for_function(
                "window.results.form && window.results.fetch && window.results.ws",
                timeout=120_000,
            )
            results = tab.evaluate("window.results")
        finally:
            chromium.close()
    assert results["fetch"] == "sent", results
    assert results["ws"]["heard"] == [], results  # no session.created, nothing transcribed
    # Both posts and the upgrade reached the edge, and each was refused (its answer came
    # before the page saw the form loaded, the fetch resolved and the socket closed).
    assert counted(edge.url, "aistack_requests_total", outcome="4xx") >= 3
    assert counted(edge.url, "aistack_slot_hold_seconds_count", capability="asr") == 0

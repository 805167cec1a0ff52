"""Security properties not tested elsewhere: every process of the CPU stack listens on
loopback unless told otherwise, and hostile names (request ids, upload file names,
ref_audio paths) make no route write outside its directories.

Elsewhere: request ids echoed only when safe (test_edge_http.py), capture folder names
(test_observability.py), ref_audio confinement (test_speech.py), the admin token
(test_observability.py, test_admin_page.py), upload size (test_edge_http.py), audio
length (test_broken_audio.py)."""

import aiohttp
import pytest

from aistack_testing.edge import LISTEN, envelope, tcp_sockets, transcribe
from aistack_testing.vllm_omni import FakeVllmOmni

QWEN = "qwen3-tts-12hz-0.6b-base"


def listening_on(port: int) -> set[str]:
    """The addresses a socket listens on at `port`."""
    return {address for state, address in tcp_sockets(port) if state == LISTEN}


@pytest.mark.parametrize(
    "module", ["aistack_edge", "aistack_asr_whisper", "aistack_tts_piper", "aistack_llm_llamacpp"]
)
def test_default_bind_is_loopback(services, module):
    service = services.start(module, timeout=120)
    port = int(service.url.rsplit(":", 1)[1])
    assert listening_on(port) == {"127.0.0.1"}


@pytest.fixture
async def vllm():
    """A TTS backend that takes ref_audio: a hostile path must be refused by the edge
    (400), not by a missing backend (503), and never reach it."""
    async with FakeVllmOmni(QWEN) as fake:
        yield fake


async def test_hostile_names_write_nothing_outside_the_edge_directories(
    services, whisper, vllm, tmp_path
):
    root = tmp_path / "edge"
    log_dir, capture_dir, ref_dir = root / "log", root / "capture", root / "ref"
    ref_dir.mkdir(parents=True)
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": whisper.url,
            "AISTACK_TTS_BACKENDS": vllm.url,
            "AISTACK_ACCESS_LOG_DIR": str(log_dir),
            "AISTACK_CAPTURE": "true",
            "AISTACK_CAPTURE_DIR": str(capture_dir),
            "AISTACK_TTS_REF_AUDIO_DIR": str(ref_dir),
        },
    )
    # "../.." names the real secret.wav beside the edge directory.
    hostile = ["..", "../..", "../../escaped", "/tmp/escaped", "a/../../b", ".:..", "\\..\\x"]
    async with aiohttp.ClientSession() as session:
        for name in hostile:
            async with session.get(edge.url + "/health", headers={"X-Request-ID": name}) as r:
                assert r.status == 200
            speech = {"model": QWEN, "input": "hi", "task_type": "Base",
                      "ref_audio": f"{ref_dir}/{name}/secret.wav"}  # fmt: skip
            async with session.post(edge.url + "/v1/audio/speech", json=speech) as r:
                assert r.status == 400, await r.read()
                assert "ref_audio" in envelope(await r.read(), "malformed")["message"]
            status, _, _ = await transcribe(edge.url, b"not audio", filename=f"{name}.wav")
            assert status == 400
    assert not [r for r in vllm.requests if r[1] == "/v1/audio/speech"]  # none got through
    edge.stop()  # the capture and log writers batch their writes: stopped, all are done
    service_logs = set(tmp_path.glob("aistack_*.log"))  # the services fixture's own
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - service_logs
    outside = {
        p for p in written if not (p.is_relative_to(log_dir) or p.is_relative_to(capture_dir))
    }
    assert outside == {tmp_path / "secret.wav"}
    assert any(capture_dir.rglob("meta.json")) and any(log_dir.iterdir())

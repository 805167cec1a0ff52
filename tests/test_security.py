"""Security properties not tested elsewhere: every process of the CPU stack listens on
loopback unless told otherwise, and hostile names (request ids, upload file names,
ref_audio paths) make no route write outside its directories; a client's request id
names no backend job (and a busy 503 no other client's request); the images install
from the lock; in compose only the edge is reached from outside.

Elsewhere: request ids echoed only when safe (test_edge_http.py), capture folder names
(test_observability.py), ref_audio confinement (test_speech.py), the admin token
(test_observability.py, test_admin_page.py), upload size (test_edge_http.py), audio
length (test_broken_audio.py)."""

import asyncio
from pathlib import Path

import aiohttp
import pytest

from aistack_testing.edge import (
    LISTEN,
    asr_edge_env,
    envelope,
    tcp_sockets,
    transcribe,
    until_held,
)
from aistack_testing.vllm_omni import FakeVllmOmni

ROOT = Path(__file__).resolve().parents[1]
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


async def test_a_client_cannot_name_the_backend_job_of_its_request(
    services, whisper, redis_server, speech_wav
):
    """The backend's job is named by the edge, not by the client's X-Request-ID: a stop
    for that id (what another client's early hang-up with the same id would send) is
    remembered by the backend for a minute, and must not cancel this request."""
    edge = services.start("aistack_edge", env=asr_edge_env(whisper, redis_server))
    chosen = "chosen-by-the-client"
    async with aiohttp.ClientSession() as session:
        async with session.delete(whisper.url + f"/jobs/{chosen}?wait=0") as r:
            assert (await r.json())["running"] is False  # remembered as cancelled early
        form = aiohttp.FormData()
        form.add_field("file", speech_wav.read_bytes(), filename="speech.wav")
        headers = {"X-Request-ID": chosen}
        url = edge.url + "/v1/audio/transcriptions"
        async with session.post(url, data=form, headers=headers) as r:
            assert r.status == 200, await r.text()
            assert r.headers["X-Request-ID"] == chosen  # still the client's, in its answer
            assert "fox" in (await r.json())["text"].lower()


async def test_a_busy_answer_names_no_other_clients_request(
    services, whisper, redis_server, speech_wav
):
    edge = services.start("aistack_edge", env=asr_edge_env(whisper, redis_server))
    secret = "holders-own-request-id"
    url = edge.url + "/v1/audio/transcriptions"
    async with aiohttp.ClientSession() as session:
        for _ in range(5):  # until one refusal comes while the holder holds the slot
            form = aiohttp.FormData()
            form.add_field("file", speech_wav.read_bytes(), filename="speech.wav")
            holder = asyncio.create_task(
                _status(session.post(url, data=form, headers={"X-Request-ID": secret}))
            )
            busy = await until_held(redis_server.url)
            assert secret not in busy  # nor in the lease the slot's store keeps
            status, _, body = await transcribe(edge.url, b"RIFF")
            assert await holder == 200
            if status == 503:
                break
    assert status == 503, body
    assert secret not in envelope(body, "network")["message"]


async def _status(request) -> int:
    async with request as r:
        await r.read()
        return r.status


@pytest.mark.parametrize(
    "dockerfile",
    ["edge/Dockerfile", "services/asr-whisper/Dockerfile", "services/tts-piper/Dockerfile"],
)
def test_an_image_installs_from_the_lock(dockerfile):
    """Every `pip install` of the image names its constraints (a version range would pick
    whatever is newest on the day it is built)."""
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
    installs = [line for line in text.splitlines() if "pip install" in line]
    assert installs
    for line in installs:
        assert " -c " in line, line


def test_in_compose_only_the_edge_is_reached_from_outside():
    """The backends and Redis sit on an internal network with no published port; the
    edge (and Ollama, for its registry) join the default network too."""
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose["networks"]["backends"]["internal"] is True
    for name, service in compose["services"].items():
        edge = name.startswith("edge")
        assert ("ports" in service) == edge, name
        if name == "models":  # a one-off download: reaches no service, only the hub
            assert "networks" not in service
            continue
        networks = set(service["networks"])
        assert "backends" in networks, name
        assert networks - {"backends"} == ({"default"} if edge or name == "ollama" else set())

"""/v1/audio/speech through a real edge to the fake vLLM-Omni (aistack_testing.vllm_omni,
written from vLLM-Omni's source): real WAV audio and its seconds counted, vLLM's error
shapes (nested and flat) kept as the envelope's message, and the routes the real server
lacks answered as it answers them."""

import io
import wave

import aiohttp
import pytest

from aistack_testing.edge import envelope
from aistack_testing.vllm_omni import FakeVllmOmni

QWEN = "qwen3-tts-12hz-0.6b-customvoice"


@pytest.fixture(params=[False, True], ids=["nested errors", "flat errors"])
async def vllm(request):
    async with FakeVllmOmni(QWEN, flat_errors=request.param) as fake:
        yield fake


@pytest.fixture
def edge(services, vllm, redis_server):
    env = {
        "AISTACK_TTS_BACKENDS": vllm.url,
        "AISTACK_REDIS_URL": redis_server.url,
        "AISTACK_SLOT_KEY": "aistack:test-speech-vllm",
    }
    return services.start("aistack_edge", env=env)


async def post(url: str, body: dict) -> tuple[int, str, bytes]:
    async with aiohttp.request("POST", url + "/v1/audio/speech", json=body) as r:
        return r.status, r.content_type, await r.read()


async def test_speech_is_a_real_wav_and_its_seconds_are_counted(edge, vllm):
    body = {"model": QWEN, "input": "One two three four five.", "voice": "Vivian"}
    status, content_type, audio = await post(edge.url, body)
    assert (status, content_type) == (200, "audio/wav"), audio
    with wave.open(io.BytesIO(audio)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds > 0.5
    async with aiohttp.request("GET", edge.url + "/metrics") as r:
        metrics = await r.text()
    line = next(m for m in metrics.splitlines() if m.startswith("aistack_tts_audio_seconds_total"))
    assert QWEN in line and float(line.split()[-1]) == pytest.approx(seconds, abs=0.01)
    assert [r[1] for r in vllm.requests if r[0] == "POST"] == ["/v1/audio/speech"]


@pytest.mark.parametrize(
    ("fields", "part"),
    [
        ({"voice": "nobody"}, "Invalid speaker 'nobody'"),
        ({"language": "Klingon"}, "Invalid language 'Klingon'"),
        ({"task_type": "VoiceDesign"}, "requires 'instructions'"),
        ({"ref_text": "hello"}, "only valid for Base task"),
    ],
)
async def test_vllm_errors_keep_their_message(edge, fields, part):
    status, _, body = await post(edge.url, {"model": QWEN, "input": "Hello.", **fields})
    assert status == 400, body
    error = envelope(body, "malformed")
    assert part in error["message"] and "{" not in error["message"], error
    assert error["provider"] == "vllm"


async def test_the_fake_has_only_the_real_routes(vllm):
    async with aiohttp.ClientSession() as session:
        async with session.get(vllm.url + "/v1/audio/voices") as r:
            assert (r.status, await r.json()) == (404, {"detail": "Not Found"})
        async with session.get(vllm.url + "/v1/audio/speech") as r:
            assert (r.status, await r.json()) == (405, {"detail": "Method Not Allowed"})
        async with session.get(vllm.url + "/metrics") as r:
            assert "vllm:num_requests_running{" in await r.text()


async def test_a_backend_error_is_re_wrapped_with_its_kinds_status(edge):
    # vLLM-Omni has no /v1/audio/voices: its FastAPI 404 reaches the client as the
    # envelope with the malformed kind's 400 (docs/speech-endpoint.md, Errors), not as a 404.
    url = edge.url + f"/v1/audio/voices?model={QWEN}"
    async with aiohttp.request("GET", url) as r:
        status, body = r.status, await r.read()
    assert status == 400, body
    error = envelope(body, "malformed")
    assert (error["message"], error["provider"]) == ("Not Found", "vllm")

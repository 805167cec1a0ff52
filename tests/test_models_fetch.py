"""`make models` (scripts/models.py) against a hub on loopback that speaks the file API as
huggingface_hub calls it (aistack_testing.fake_hub), with real files in the real
repositories' layout: the whole gpu profile's set lands where each backend loads it from,
a download killed mid-file resumes with a Range request, a file whose hash is not the
hub's is refused, and a filled folder can be copied instead of the hub."""

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from aistack_asr_whisper.parts import join_whisper_base
from aistack_testing.fake_hub import FakeHub
from aistack_testing.processes import free_port, start_edge, start_module

ROOT = Path(__file__).resolve().parents[1]
TORCH_BACKENDS = [str(ROOT / "services/asr-parakeet"), str(ROOT / "services/asr-sensevoice")]
sys.path[:0] = TORCH_BACKENDS

from aistack_asr_parakeet.models import find_model  # noqa: E402
from aistack_asr_sensevoice import engine as sensevoice  # noqa: E402

# Off the path again once imported: a torch venv's editable install leaves its metadata
# (an egg-info folder) there, which would count as installed in this venv for the tests
# that compare it with its lock.
for folder in TORCH_BACKENDS:
    sys.path.remove(folder)

NEMO = "parakeet-tdt-0.6b-v3.nemo"
WHISPER = "Systran/faster-whisper-base"


def seeded(path: Path, size: int, seed: str) -> Path:
    """`size` bytes that are the same on every run."""
    out, block = bytearray(), seed.encode()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out[:size]))
    return path


def text(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def nemo(path: Path) -> Path:
    """A .nemo as NeMo writes one: a tar of the config and the weights' checkpoint."""
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("model_config.yaml", b"target: nemo.collections.asr.models.EncDecRNNTBPEModel\n"),
            ("model_weights.ckpt", seeded(path.with_suffix(".ckpt"), 8 << 20, "nemo").read_bytes()),
        ):
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


SMALL_REPOS: dict[str, dict[str, str | tuple[int, str]]] = {
    "FunAudioLLM/SenseVoiceSmall": {
        "config.yaml": "model: SenseVoiceSmall\n",
        "model.pt": (1 << 20, "sensevoice"),
        "am.mvn": "<Nnet>\n</Nnet>\n",
        "chn_jpn_yue_eng_ko_spectok.bpe.model": (4096, "bpe"),
        "configuration.json": '{"framework": "pytorch"}',
        "README.md": "# model card\n",
    },
    "funasr/fsmn-vad": {
        "config.yaml": "model: FsmnVADStreaming\n",
        "model.pt": (64 << 10, "vad"),
        "am.mvn": "<Nnet>\n</Nnet>\n",
        "configuration.json": '{"framework": "pytorch"}',
    },
    "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice": {
        "config.json": '{"model_type": "qwen3_tts"}',
        "model.safetensors": (2 << 20, "qwen3"),
        "tokenizer_config.json": "{}",
        "speech_tokenizer/config.json": "{}",
        "speech_tokenizer/model.safetensors": (1 << 20, "speech tokenizer"),
    },
}
"""Each repository's files as its loader reads them: text as it is, binaries as
(size, seed) of repeatable bytes."""


def made(path: Path, content: str | tuple[int, str]) -> Path:
    return text(path, content) if isinstance(content, str) else seeded(path, *content)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The gpu profile's repositories, each with the files its loader reads (and a README
    that is not fetched)."""
    src = tmp_path_factory.mktemp("hub-files")
    base = join_whisper_base(src / "whisper")  # real Whisper base weights, CTranslate2
    readme = text(src / "README.md", "# model card\n")
    fake = FakeHub()
    fake.add(WHISPER, {p.name: p for p in base.iterdir()} | {"README.md": readme})
    fake.add("nvidia/parakeet-tdt-0.6b-v3", {NEMO: nemo(src / NEMO), "README.md": readme})
    for repo, files in SMALL_REPOS.items():
        folder = src / repo
        fake.add(repo, {path: made(folder / path, content) for path, content in files.items()})
    with fake.running():
        yield fake


def env_for(hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),  # no token, no cache of this user's
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "",
    }


def make_models(hub: FakeHub, root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "models", f"MODELS_DIR={root}", f"MODELS_ARGS={' '.join(args)}"],
        cwd=ROOT,
        env={**env_for(hub, root.parent), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )


def statuses(summary: str) -> list[str]:
    """The status column of the summary's rows."""
    return re.findall(r"^\S+\s+\S+\s+(fetched|present|missing|failed)\s", summary, re.M)


def image_env(dockerfile: str, name: str) -> str:
    """The value a backend's image sets for `name` (its `ENV` lines)."""
    found = re.search(rf"\b{name}=(\S+)", (ROOT / dockerfile).read_text())
    assert found, f"{dockerfile} sets no {name}"
    return found.group(1)


def in_volume(root: Path, volume: str, image_path: str) -> Path:
    """An image's path under /models, in this machine's folder for that volume."""
    return root / volume / Path(image_path).relative_to("/models")


def test_the_gpu_profile_set_lands_where_each_backend_loads_it(hub, tmp_path):
    root = tmp_path / "models"
    run = make_models(hub, root, "--whisper", "base")
    assert run.returncode == 0, run.stdout + run.stderr
    for repo in (WHISPER, "nvidia/parakeet-tdt-0.6b-v3", "funasr/fsmn-vad"):
        assert re.search(rf"{re.escape(repo)}\s+fetched", run.stdout), run.stdout
    assert "%|" in run.stderr  # tqdm's bar, one per file
    assert not hub.ranges("README.md")  # only what the loaders read

    # asr-whisper on its folder (the image's AISTACK_WHISPER_MODEL_DIR) lists whisper-base
    # in the edge's /v1/models.
    whisper_dir = in_volume(
        root, "whisper", image_env("services/asr-whisper/Dockerfile", "AISTACK_WHISPER_MODEL_DIR")
    )
    whisper = start_module(
        "aistack_asr_whisper",
        tmp_path / "whisper.log",
        {"AISTACK_WHISPER_MODEL_DIR": str(whisper_dir)},
    )
    try:
        edge = start_edge(whisper.url, tmp_path / "edge.log")
        try:
            with urllib.request.urlopen(edge.url + "/v1/models", timeout=30) as answer:
                listed = answer.read().decode()
            assert '"whisper-base"' in listed
        finally:
            edge.stop()
    finally:
        whisper.stop()

    # asr-parakeet's loader finds the .nemo under its /models.
    parakeet_path = in_volume(
        root,
        "parakeet",
        image_env("services/asr-parakeet/Dockerfile", "AISTACK_PARAKEET_MODEL_PATH"),
    )
    found = find_model(parakeet_path)
    assert found is not None and found.name == NEMO
    assert tarfile.is_tarfile(found)

    # asr-sensevoice's loader takes both folders its image names.
    dockerfile = "services/asr-sensevoice/Dockerfile"
    for name in ("AISTACK_SENSEVOICE_MODEL_DIR", "AISTACK_SENSEVOICE_VAD_DIR"):
        assert sensevoice.present(in_volume(root, "sensevoice", image_env(dockerfile, name)))

    # tts-qwen3's vLLM resolves the hub id offline in HF_HOME (its image's model cache).
    from huggingface_hub import snapshot_download

    cache = in_volume(
        root, "qwen3", image_env("services/tts-qwen3/Dockerfile", "AISTACK_QWEN3_MODEL_CACHE")
    )
    snapshot = Path(
        snapshot_download(
            "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", cache_dir=cache / "hub", local_files_only=True
        )
    )
    assert (snapshot / "speech_tokenizer" / "model.safetensors").stat().st_size == 1 << 20

    # A second run fetches nothing and says so.
    gets = len(hub.requests)
    again = make_models(hub, root, "--whisper", "base")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not [
        r for r in hub.requests[gets:] if r[0] == "GET" and ("/resolve/" in r[1] or "/cdn/" in r[1])
    ]
    assert statuses(again.stdout) == ["present"] * 5

    # --check says what is there, without the hub.
    check = make_models(hub, root, "--whisper", "base,small", "--check")
    assert check.returncode != 0  # make's own status for a recipe that failed
    assert re.search(r"Systran/faster-whisper-small\s+missing", check.stdout)
    assert re.search(rf"{WHISPER}\s+present", check.stdout)

    # With the hub away (a box offline), what is on disk counts, and the summary says so.
    offline = subprocess.run(
        [sys.executable, str(ROOT / "scripts/models.py"), "--root", str(root), "--whisper", "base"],
        env={**env_for(hub, tmp_path), "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert statuses(offline.stdout) == ["present"] * 5
    assert f"{WHISPER}: not checked against the hub" in offline.stdout

    # Copied to another folder (an offline box), the same set is there.
    other = tmp_path / "copy"
    copied = make_models(hub, other, "--whisper", "base", "--from", str(root))
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert make_models(hub, other, "--whisper", "base", "--check").returncode == 0
    assert find_model(other / "parakeet").read_bytes() == found.read_bytes()


def test_a_download_killed_mid_file_resumes_where_it_stopped(hub, tmp_path):
    root = tmp_path / "models"
    held_at = 5 << 20  # the hub holds the body there: the .part file stops growing
    hub.stall(NEMO, after=held_at)
    cmd = [
        sys.executable,
        str(ROOT / "scripts/models.py"),
        "--root",
        str(root),
        "--only",
        "asr-parakeet",
    ]
    first = subprocess.Popen(
        cmd, env=env_for(hub, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    blobs = root / "parakeet" / "models--nvidia--parakeet-tdt-0.6b-v3" / "blobs"
    deadline = time.monotonic() + 120
    partial: list[Path] = []
    while time.monotonic() < deadline and not partial:
        partial = [p for p in blobs.glob("*.part") if p.stat().st_size >= held_at]
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    hub.release()
    assert partial, "the download never reached the stall"
    held = partial[0].stat().st_size
    assert held == held_at

    second = subprocess.run(
        cmd, env=env_for(hub, tmp_path), capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert hub.ranges(NEMO)[-1] == f"bytes={held}-", hub.requests
    whole = find_model(root / "parakeet")
    expected = hub.repos["nvidia/parakeet-tdt-0.6b-v3"][NEMO]
    assert hashlib.sha256(whole.read_bytes()).hexdigest() == expected.sha256
    assert not list(blobs.glob("*.part"))


def test_a_file_that_is_not_the_hubs_is_refused(hub, tmp_path):
    """The listing says one sha256, the file served has another (a broken mirror)."""
    repo = "funasr/fsmn-vad"
    good = hub.repos[repo]["model.pt"]
    hub.repos[repo]["model.pt"] = good.__class__(good.source, good.size, good.blob_id, "0" * 64)
    try:
        root = tmp_path / "models"
        run = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts/models.py"),
                "--root",
                str(root),
                "--only",
                "asr-sensevoice",
            ],
            env=env_for(hub, tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        hub.repos[repo]["model.pt"] = good
    assert run.returncode == 1
    assert re.search(r"funasr/fsmn-vad\s+failed", run.stdout)
    assert "model.pt: hash " in run.stdout and "the hub says " + "0" * 64 in run.stdout
    assert not (root / "sensevoice/iic/speech_fsmn_vad_zh-cn-16k-common-pytorch/model.pt").exists()

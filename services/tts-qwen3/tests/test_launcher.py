"""The launcher's command line and environment, from settings as the environment gives them."""

import subprocess
import sys

import pytest

from aistack_tts_qwen3.launcher import OFFLINE, command, environment, missing_weights
from aistack_tts_qwen3.settings import Qwen3Settings


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_defaults_serve_the_contract_model_on_its_port() -> None:
    argv = command(Qwen3Settings())
    assert argv[:4] == ["vllm", "serve", "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", "--omni"]
    assert option(argv, "--port") == "11521"
    assert option(argv, "--host") == "127.0.0.1"
    assert option(argv, "--served-model-name") == "qwen3-tts-12hz-0.6b-customvoice"
    assert option(argv, "--gpu-memory-utilization") == "0.3"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISTACK_QWEN3_GPU_MEMORY_UTILIZATION", "0.5")
    monkeypatch.setenv("AISTACK_QWEN3_MODEL", "/models/Qwen3-TTS-12Hz-1.7B-CustomVoice")
    monkeypatch.setenv("AISTACK_QWEN3_SERVED_MODEL_NAME", "qwen3-tts-1.7b")
    monkeypatch.setenv("AISTACK_QWEN3_EXTRA_ARGS", "--enforce-eager --max-model-len '2048'")
    argv = command(Qwen3Settings())
    assert argv[2] == "/models/Qwen3-TTS-12Hz-1.7B-CustomVoice"
    assert option(argv, "--gpu-memory-utilization") == "0.25"
    assert option(argv, "--served-model-name") == "qwen3-tts-1.7b"
    assert argv[-3:] == ["--enforce-eager", "--max-model-len", "2048"]


@pytest.mark.parametrize("share", ["0", "-0.2", "0.96", "2"])
def test_share_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, share: str) -> None:
    monkeypatch.setenv("AISTACK_QWEN3_GPU_MEMORY_UTILIZATION", share)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        Qwen3Settings()


def test_environment_is_offline_and_reads_the_mounted_cache() -> None:
    env = environment(
        Qwen3Settings(qwen3_model_cache="/models"), {"PATH": "/bin", "HF_HUB_OFFLINE": "0"}
    )
    assert env == {"PATH": "/bin", **OFFLINE, "HF_HOME": "/models"}
    assert "HF_HOME" not in environment(Qwen3Settings(), {})


def test_dry_run_prints_the_command() -> None:
    env = {"AISTACK_QWEN3_GPU_MEMORY_UTILIZATION": "0.4", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "aistack_tts_qwen3", "--host", "0.0.0.0", "--dry-run"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    printed = result.stdout.split()
    assert option(printed, "--host") == "0.0.0.0"
    assert option(printed, "--gpu-memory-utilization") == "0.2"


def test_missing_weights_stop_it_with_what_to_do(tmp_path) -> None:
    """With the hub off, vLLM would fail on a missing model deep in its start-up, again at
    each restart: the launcher says what is missing and how to get it, and exits 1."""
    run = subprocess.run(
        [sys.executable, "-m", "aistack_tts_qwen3"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AISTACK_QWEN3_MODEL_CACHE": str(tmp_path)},
    )
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"no weights for Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice in {tmp_path}/hub "
        "(the hub is off here): fetch them with `make models` (docs/deploy.md)"
    )


def test_weights_in_the_hub_cache_are_found(tmp_path) -> None:
    """The layout huggingface_hub (and `make models`) leaves under HF_HOME/hub."""
    settings = Qwen3Settings(qwen3_model_cache=tmp_path)
    assert missing_weights(settings) is not None
    repo = tmp_path / "hub" / "models--Qwen--Qwen3-TTS-12Hz-0.6B-CustomVoice"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    assert missing_weights(settings) is None
    local = Qwen3Settings(qwen3_model=str(repo / "snapshots" / "abc123"))
    assert missing_weights(local) is None

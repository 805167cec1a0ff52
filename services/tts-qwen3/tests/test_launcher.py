"""The launcher's command line and environment, from settings as the environment gives them."""

import subprocess
import sys

import pytest

from aistack_tts_qwen3.launcher import OFFLINE, command, environment
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

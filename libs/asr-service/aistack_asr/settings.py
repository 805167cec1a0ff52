"""Settings every ASR backend shares; each service subclasses them."""

from typing import Literal

from aistack_service.settings import ServiceSettings


class AsrSettings(ServiceSettings):
    """A service overrides `host` and `port` with its own defaults and its own variable
    names (e.g. `AISTACK_ASR_WHISPER_PORT`)."""

    host: str = "127.0.0.1"
    port: int = 0
    model_keep_alive_sec: float = 300.0
    """Idle models are unloaded after this long; negative keeps them forever."""
    max_audio_sec: float = 4 * 3600.0
    """Longer audio is refused with overflow (413) before any inference."""
    max_upload_mb: float = 2048.0
    """Larger request bodies are refused (the edge enforces its own, usually lower, limit)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"

"""The service's settings: every one an `AISTACK_`-prefixed environment variable."""

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from aistack_service.settings import ServiceSettings


class PiperSettings(ServiceSettings):
    piper_host: str = "127.0.0.1"
    piper_port: int = 11520
    piper_voices_dir: Path | None = None
    """More voices: each `<name>.onnx` beside its `<name>.onnx.json`."""
    piper_default_voice: str | None = None
    """The voice OpenAI's voice names map to; the bundled voice when unset."""
    piper_voice_map: dict[str, str] = {}
    """Extra voice names, or OpenAI's names remapped, as JSON: {"nova": "en_US-amy-medium"}."""
    piper_model_aliases: Annotated[list[str], NoDecode] = ["tts-1", "tts-1-hd"]
    """Model ids served besides `piper`, comma-separated (empty: none)."""
    tts_max_input_chars: int = Field(4096, ge=1)

    @field_validator("piper_model_aliases", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        return [str(item).strip() for item in value if str(item).strip()]

"""The edge's settings: every one an `AISTACK_`-prefixed environment variable."""

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

UrlList = Annotated[list[str], NoDecode]


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AISTACK_")

    host: str = "127.0.0.1"
    port: int = 11500
    redis_url: str | None = None
    slot_key: str = "aistack:gpu-slot"
    slot_ttl_ms: int = Field(10_000, ge=100)
    slot_wait_s: float = Field(0.0, ge=0)
    retry_after_s: int = Field(5, ge=0)
    max_upload_mb: float = Field(100.0, gt=0)
    asr_backends: UrlList = []
    tts_backends: UrlList = []
    llm_upstreams: UrlList = []
    probe_timeout_s: float = Field(1.0, gt=0)
    models_cache_s: float = Field(3.0, ge=0)
    backend_timeout_s: float = Field(600.0, gt=0)

    @field_validator("asr_backends", "tts_backends", "llm_upstreams", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        """Comma-separated base URLs, trailing slashes dropped."""
        if isinstance(value, str):
            value = value.split(",")
        return [str(url).strip().rstrip("/") for url in value if str(url).strip()]

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

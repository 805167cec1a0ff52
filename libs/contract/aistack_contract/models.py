"""Entries of GET /v1/models (public) and of a backend's GET /info (internal)."""

from typing import Literal

from pydantic import BaseModel

Capability = Literal["asr", "tts", "llm"]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str
    capabilities: list[Capability]
    languages: list[str] | None = None
    supports_streaming: bool | None = None
    supports_translate: bool | None = None
    is_routing_alias: bool | None = None
    loaded: bool | None = None

    def public(self) -> dict:
        """The card as /v1/models shows it: unset extensions left out."""
        return self.model_dump(mode="json", exclude_none=True)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]

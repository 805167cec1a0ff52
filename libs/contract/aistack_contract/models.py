"""Entries of GET /v1/models (public) and of a backend's GET /info (internal)."""

from typing import Literal

from pydantic import BaseModel

Capability = Literal["asr", "tts", "llm", "diarize"]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str
    capabilities: list[Capability]
    languages: list[str] | None = None
    supports_streaming: bool | None = None
    supports_translate: bool | None = None
    supports_instructions: bool | None = None
    """TTS: whether the model follows a speech request's `instructions` (the field is
    accepted either way)."""
    supports_logprobs: bool | None = None
    """ASR: whether `include[]=logprobs` gets log-probabilities (the words' own)."""
    is_routing_alias: bool | None = None
    loaded: bool | None = None
    routes_to: list[str] | None = None
    """A routing alias's models: what a request for it runs on now."""
    provider: str | None = None
    """Internal: who serves the model, as error envelopes name it (e.g. "Faster-Whisper")."""
    family: str | None = None
    """Internal: the ASR engine family `auto` routes by (whisper, parakeet, sensevoice)."""
    size: int | None = None
    """Internal: the bytes of the model's weights, as its backend finds them on disk: of
    two models of a family, `auto` and the family aliases take the larger."""

    def public(self) -> dict:
        """The card as /v1/models shows it: unset extensions and internal fields left out."""
        return self.model_dump(mode="json", exclude_none=True, exclude=_INTERNAL)


_INTERNAL = {"provider", "family", "size"}


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]

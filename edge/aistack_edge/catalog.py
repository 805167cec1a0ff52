"""What the gateway can serve right now: the model cards of the backends that answer.

Every configured backend is probed concurrently with a short timeout; the answer is
cached for a few seconds. A backend that does not answer contributes nothing.

A probe that found a backend up also reads its process start time from its /metrics
(`process_start_time_seconds`, which prometheus_client exports on Linux): a start later
than any seen at that URL is a restart of the backend, whoever restarted it (make up's
supervisor, compose, Kubernetes).
"""

import asyncio
import logging
import re
import time
from dataclasses import dataclass

import aiohttp
from pydantic import ValidationError

from aistack_contract.models import Capability, ModelCard

log = logging.getLogger(__name__)

AUTO = "auto"

# Where each kind of backend lists its models.
_LISTING_PATH: dict[Capability, str] = {
    "asr": "/info",
    "tts": "/v1/models",
    "llm": "/v1/models",
    "diarize": "/info",
}
# Where Ollama lists its LLMs (`{"models": [{"name": ...}, ...]}`).
OLLAMA_TAGS = "/api/tags"
_PROCESS_START = re.compile(rb"^process_start_time_seconds (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """A model the gateway can serve, and the base URL of the backend that serves it."""

    card: ModelCard
    upstream: str

    @property
    def provider(self) -> str:
        """Who serves it, as envelopes name it: what the backend says of itself."""
        return self.card.provider or self.card.owned_by


class Catalog:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        upstreams: dict[Capability, list[str]],
        probe_timeout_s: float,
        cache_s: float,
        ollama: str | None = None,
        llm_provider: str = "llama.cpp",
    ) -> None:
        self._session = session
        self._ollama = ollama
        self._llm_provider = llm_provider
        if ollama is not None:
            upstreams = {**upstreams, "llm": [*upstreams.get("llm", []), ollama]}
        self._upstreams = upstreams
        self._timeout = aiohttp.ClientTimeout(total=probe_timeout_s)
        self._cache_s = cache_s
        self._entries: list[Entry] = []
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._unanswered: set[str] = set()
        self._probed = False
        # Per backend URL: the latest process start time seen, and the restarts counted.
        self._started: dict[str, float] = {}
        self._restarts: dict[str, int] = {}

    async def entries(self) -> list[Entry]:
        async with self._lock:
            if time.monotonic() - self._fetched_at > self._cache_s:
                self._entries = await self._probe_all()
                self._fetched_at = time.monotonic()
                self._probed = True
            return self._entries

    def forget(self) -> None:
        """Drop the cached answer (after a backend was found down)."""
        self._fetched_at = float("-inf")

    async def find(self, capability: Capability, model_id: str) -> Entry | None:
        for entry in await self.entries():
            if entry.card.id == model_id and capability in entry.card.capabilities:
                return entry
        return None

    async def of_capability(self, capability: Capability) -> list[Entry]:
        return [e for e in await self.entries() if capability in e.card.capabilities]

    async def unanswered(self, capability: Capability) -> list[str]:
        """The configured backends of `capability` that did not answer the latest probe."""
        await self.entries()
        return [url for url in self._upstreams.get(capability, []) if url in self._unanswered]

    def backend_states(self) -> list[tuple[Capability, str, bool]]:
        """(capability, url, answered) per configured backend, as of the latest probe;
        empty before the first."""
        if not self._probed:
            return []
        return [
            (capability, url, url not in self._unanswered)
            for capability, urls in self._upstreams.items()
            for url in urls
        ]

    def backend_restarts(self) -> list[tuple[Capability, str, int]]:
        """(capability, url, restarts seen) per configured backend whose process start
        time a probe has read; a restart is counted when a probe reads a later start than
        any before. Restarts between two probes count as one."""
        return [
            (capability, url, self._restarts.get(url, 0))
            for capability, urls in self._upstreams.items()
            for url in urls
            if url in self._started
        ]

    async def cards(self) -> list[ModelCard]:
        """The /v1/models list: the `auto` alias first when any ASR model is up."""
        entries = await self.entries()
        asr = [e.card for e in entries if "asr" in e.card.capabilities]
        alias = []
        if asr:
            streams = all(card.supports_streaming for card in asr)
            alias = [
                ModelCard(
                    id=AUTO,
                    owned_by="aistack",
                    capabilities=["asr"],
                    is_routing_alias=True,
                    supports_streaming=streams,
                )
            ]
        return alias + diarize_alias(entries) + [e.card for e in entries]

    async def _probe_all(self) -> list[Entry]:
        self._unanswered = set()
        probes = [
            self._probe(capability, url)
            for capability, urls in self._upstreams.items()
            for url in urls
        ]
        found = await asyncio.gather(*probes)
        return [entry for entries in found for entry in entries]

    async def _probe(self, capability: Capability, url: str) -> list[Entry]:
        ollama = url == self._ollama
        path = OLLAMA_TAGS if ollama else _LISTING_PATH[capability]
        try:
            async with self._session.get(url + path, timeout=self._timeout) as r:
                r.raise_for_status()
                listing = await r.json()
            listed = [_from_ollama(m) for m in listing["models"]] if ollama else listing["data"]
            # OpenAI-compatible LLM servers don't name themselves: the configured name does.
            provider = self._llm_provider if capability == "llm" else None
            cards = [_card(capability, raw, provider) for raw in listed]
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.info(
                "%s backend %s is not answering: %s", capability, url, exc or type(exc).__name__
            )
            self._unanswered.add(url)
            return []
        if not ollama:  # Ollama has no /metrics
            await self._note_start(capability, url)
        return [Entry(card, url) for card in cards if card is not None]

    async def _note_start(self, capability: Capability, url: str) -> None:
        """Read the backend's process start time; count a later one than any before as a
        restart. A backend whose /metrics lacks it is not counted."""
        try:
            # The edge's session leaves bodies compressed: ask for a plain one.
            headers = {"Accept-Encoding": "identity"}
            async with self._session.get(
                url + "/metrics", headers=headers, timeout=self._timeout
            ) as r:
                r.raise_for_status()
                found = _PROCESS_START.search(await r.read())
            if found is None:
                return
            started = float(found[1])
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("no process start time from %s: %s", url, exc or type(exc).__name__)
            return
        before = self._started.get(url)
        if before is not None and started <= before:
            return
        if before is not None:
            self._restarts[url] = self._restarts.get(url, 0) + 1
            log.warning("%s backend %s restarted (its process is a new one)", capability, url)
        self._started[url] = started


def diarize_alias(entries: list[Entry]) -> list[ModelCard]:
    """OpenAI's diarizing model, where an ASR model and a diarizer are up: an alias of the
    two it composes (what `auto` picks, and the diarizer)."""
    from aistack_edge.asr.diarize import DIARIZE_MODEL, routes

    if (found := routes(entries)) is None:
        return []
    transcriber, diarizer = found
    return [
        ModelCard(
            id=DIARIZE_MODEL,
            owned_by="aistack",
            capabilities=["asr"],
            is_routing_alias=True,
            supports_streaming=True,
            routes_to=[transcriber.card.id, diarizer.card.id],
        )
    ]


def _from_ollama(model: dict) -> dict:
    """An entry of Ollama's /api/tags as an OpenAI-style listing entry."""
    return {"id": model["name"], "owned_by": "ollama", "provider": "Ollama"}


# vLLM-Omni's speech API passes `instructions` on to the model (Qwen3-TTS follows them):
# its listing, OpenAI's shape, cannot say so itself.
_FOLLOWS_INSTRUCTIONS = {"vllm"}


def _card(capability: Capability, raw: dict, provider: str | None) -> ModelCard | None:
    """A backend's listing entry as our card; OpenAI-style entries lack capabilities."""
    known: dict = {"owned_by": "unknown", "provider": provider}
    if capability == "tts" and raw.get("owned_by") in _FOLLOWS_INSTRUCTIONS:
        known["supports_instructions"] = True
    try:
        return ModelCard.model_validate({**known, **raw, "capabilities": [capability]})
    except ValidationError:
        log.warning("skipping a malformed %s model card: %r", capability, raw)
        return None

"""VRAM hot-swap: before a workload of one capability runs, idle models of the other
capabilities are asked to leave the GPU.

Policy `AISTACK_SWAP_POLICY`: `exclusive` (the default, for 8 GB cards) evicts;
`shared` (cards that hold everything) evicts nothing. What is evicted:

- ASR: every backend's `POST /evict`, which drops only idle models (a model with a
  transcription in flight stays); before a transcription, every ASR backend but the one
  that serves it (Whisper, Parakeet and SenseVoice each hold gigabytes);
- LLM: each model Ollama has loaded (`GET /api/ps`), unloaded with Ollama's
  documented `POST /api/generate {"model": m, "keep_alive": 0}`. OpenAI-compatible
  upstreams (llama.cpp's server, vLLM) have no unload call and keep their models;
- the diarizer: its `POST /evict` (the ASR protocol's), before TTS and LLM workloads;
- TTS: nothing. Qwen3-TTS reserves its share of VRAM at start-up for its whole life
  (its `gpu_memory_utilization`); Piper runs on the CPU.

The caller holds the GPU slot, so no workload of the gateway runs meanwhile. The calls
run concurrently, each bounded by `AISTACK_SWAP_TIMEOUT_S`; a failure is logged, never
raised: a backend that cannot evict must not fail the request that asked.
"""

import asyncio
import logging
from collections.abc import Awaitable

import aiohttp
from aiohttp import web

from aistack_contract.models import Capability
from aistack_edge.state import SESSION, SETTINGS

log = logging.getLogger(__name__)

_FAILURES = (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError)
_KEEP_LOADED_S = 5.0


async def make_room(
    app: web.Application, capability: Capability, upstream: str | None = None
) -> None:
    """Ask the idle models of the capabilities other than `capability`, and of the ASR
    backends other than `upstream` (the one about to serve), to leave the GPU."""
    settings = app[SETTINGS]
    if settings.swap_policy == "shared":
        return
    session, seconds = app[SESSION], settings.swap_timeout_s
    calls = []
    calls += [
        _bounded(evict_asr(session, url), seconds, f"ASR backend {url}")
        for url in settings.asr_backends
        if capability != "asr" or (upstream is not None and url != upstream)
    ]
    if capability != "llm" and settings.ollama_url:
        url = settings.ollama_url
        calls.append(_bounded(unload_ollama(session, url, seconds), seconds, f"Ollama at {url}"))
    if capability not in ("asr", "diarize"):  # a diarized transcription needs it
        calls += [
            _bounded(evict_asr(session, url), seconds, f"diarizer {url}")
            for url in settings.diarize_backends
        ]
    await asyncio.gather(*calls)


async def _bounded(call: Awaitable[object], seconds: float, who: str) -> bool:
    """`call`, given up after `seconds`; a failure logged, never raised. Whether it ended."""
    try:
        async with asyncio.timeout(seconds):
            await call
    except _FAILURES as exc:
        log.warning("%s did not make room: %s", who, str(exc) or type(exc).__name__)
        return False
    return True


async def evict_asr(session: aiohttp.ClientSession, url: str) -> list[str]:
    """The ASR backend at `url` drops its idle models; the ones it dropped."""
    async with session.post(url + "/evict") as r:
        r.raise_for_status()
        evicted = (await r.json())["evicted"]
    if evicted:
        log.info("ASR backend %s evicted %s", url, ", ".join(evicted))
    return evicted


async def unload_ollama(session: aiohttp.ClientSession, url: str, seconds: float) -> list[str]:
    """Every model Ollama has loaded, unloaded (each call bounded on its own); the ones
    that were."""
    async with session.get(url + "/api/ps") as r:
        r.raise_for_status()
        loaded = [model["name"] for model in (await r.json())["models"]]
    done = await asyncio.gather(
        *(
            _bounded(_unload(session, url, name), seconds, f"Ollama at {url} unloading {name}")
            for name in loaded
        )
    )
    return [name for name, ok in zip(loaded, done, strict=True) if ok]


async def keep_loaded(
    session: aiohttp.ClientSession, url: str, model: str, keep_alive: str | int | float
) -> None:
    """Set how long Ollama keeps `model` loaded from now: its native `POST /api/generate`
    with no prompt and a `keep_alive` (Ollama's OpenAI-compatible endpoint ignores the
    field). A failure is logged: the answer has been given already."""
    body = {"model": model, "keep_alive": keep_alive}
    call = _posted(session, url + "/api/generate", body)
    if await _bounded(call, _KEEP_LOADED_S, f"Ollama at {url} keeping {model} loaded"):
        log.debug("Ollama at %s keeps %s loaded for %s", url, model, keep_alive)


async def _posted(session: aiohttp.ClientSession, url: str, body: dict) -> None:
    async with session.post(url, json=body) as r:
        r.raise_for_status()
        await r.read()


async def _unload(session: aiohttp.ClientSession, url: str, model: str) -> None:
    await _posted(session, url + "/api/generate", {"model": model, "keep_alive": 0})
    log.info("Ollama at %s unloaded %s", url, model)

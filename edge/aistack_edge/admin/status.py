"""The admin page's status snapshot: backends and their models, the GPU slot, recent
requests and what they add up to, the observability toggles."""

import time
from collections import defaultdict

from aiohttp import web

from aistack_edge.config import EdgeSettings
from aistack_edge.errors import SlotStoreDown
from aistack_edge.slot import MemoryStore
from aistack_edge.state import CATALOG, OBSERVABILITY, SETTINGS, SLOT

RECENT_SHOWN = 50


def evict_call(settings: EdgeSettings, url: str) -> str | None:
    """How the backend at `url` unloads its models: `asr` (`POST /evict`), `ollama`
    (keep_alive 0), or None where it has no such call (or is not configured)."""
    if url in settings.asr_backends or url in settings.diarize_backends:
        return "asr"
    if url == settings.ollama_url:
        return "ollama"
    return None


async def snapshot(app: web.Application) -> dict:
    settings, catalog, obs = app[SETTINGS], app[CATALOG], app[OBSERVABILITY]
    models = defaultdict(list)
    for entry in await catalog.entries():
        models[entry.upstream].append({"id": entry.card.id, "loaded": entry.card.loaded})
    backends = [
        {
            "capability": capability,
            "url": url,
            "up": up,
            "evict": evict_call(settings, url),
            "models": models[url],
        }
        for capability, url, up in catalog.backend_states()
    ]
    return {
        "time": time.time(),
        "changes_allowed": settings.admin_token is not None,
        "backends": backends,
        "slot": await _slot(app),
        "recent": obs.recent.latest(RECENT_SHOWN),
        "glance": obs.recent.glance(),
        "observability": obs.state(),
    }


async def _slot(app: web.Application) -> dict:
    slot, settings = app[SLOT], app[SETTINGS]
    state = {
        "store": "memory" if isinstance(slot.store, MemoryStore) else "redis",
        "wait_s": settings.slot_wait_s,
        # Requests wait in line only with a wait set; realtime utterances always do.
        "waiting": slot.waiting if settings.slot_wait_s > 0 or slot.waiting else None,
        "holder": None,
        "held_s": None,
        "error": None,
        # Held past the stop grace for jobs that have not stopped: by what, since when.
        "stuck": [
            {"backend": s.backend, "job": s.job, "for_s": round(time.time() - s.since, 1)}
            for s in slot.stuck
        ],
    }
    try:
        holding = await slot.holding()
    except SlotStoreDown as exc:
        state["error"] = exc.body.message
        return state
    if holding is not None:
        state["holder"] = holding.holder
        state["held_s"] = None if holding.held_s is None else round(holding.held_s, 3)
    return state

"""The edge application: settings in, aiohttp app out."""

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

from aistack_edge.catalog import Catalog
from aistack_edge.config import EdgeSettings
from aistack_edge.hosts import check_host
from aistack_edge.jobs import JOBS, Jobs
from aistack_edge.middleware import echo_request_id, envelope_middleware
from aistack_edge.observability import Observability
from aistack_edge.observability.middleware import note_answered, observe, tee_for_capture
from aistack_edge.origins import allow_origin, check_origin
from aistack_edge.realtime import bounds
from aistack_edge.routes import (
    admin,
    admin_page,
    chat,
    health,
    jobs,
    metrics,
    models,
    openapi,
    realtime,
    speech,
    transcriptions,
)
from aistack_edge.slot import MemoryStore, RedisStore, Slot, SlotObserver
from aistack_edge.slot.idle import IdleCheck
from aistack_edge.state import CATALOG, IDLE, OBSERVABILITY, SESSION, SETTINGS, SLOT
from aistack_edge.workload import stop_watching

log = logging.getLogger(__name__)


def _slot(settings: EdgeSettings, observer: SlotObserver) -> Slot:
    if settings.redis_url:
        shown = URL(settings.redis_url)
        shown = shown.with_password("***") if shown.password else shown
        log.info("GPU slot: Redis lease %r at %s", settings.slot_key, shown)
        store = RedisStore(settings.redis_url, settings.slot_key, settings.retry_after_s)
    else:
        log.info("GPU slot: embedded mode (in-process lease; AISTACK_REDIS_URL is not set)")
        store = MemoryStore()
    return Slot(
        store,
        settings.slot_ttl_ms,
        settings.slot_wait_s,
        settings.retry_after_s,
        observer,
        wait_max=settings.slot_wait_max,
        background_wait_s=settings.jobs_interactive_wait_s,
    )


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    session = aiohttp.ClientSession(auto_decompress=False)
    app[SESSION] = session
    catalog = app[CATALOG] = Catalog(
        session,
        {
            "asr": settings.asr_backends,
            "tts": settings.tts_backends,
            "llm": settings.llm_upstreams,
            "diarize": settings.diarize_backends,
        },
        settings.probe_timeout_s,
        settings.models_cache_s,
        ollama=settings.ollama_url,
        llm_provider=settings.llm_provider,
    )
    obs = app[OBSERVABILITY] = Observability(
        settings, catalog.backend_states, catalog.backend_restarts
    )
    app[SLOT] = _slot(settings, obs)
    on_gpu = [*settings.asr_backends, *settings.tts_backends, *settings.llm_upstreams]
    app[IDLE] = IdleCheck(
        session, [*on_gpu, *settings.idle_check_backends], settings.ollama_url,
        settings.probe_timeout_s,
    )  # fmt: skip
    yield
    await stop_watching()
    await session.close()
    await app[SLOT].store.close()
    await asyncio.to_thread(obs.close)


async def _jobs(app: web.Application) -> AsyncIterator[None]:
    """The background jobs' queue and runner (after the resources they use)."""
    jobs = app[JOBS] = Jobs(app)
    jobs.start()
    yield
    await jobs.close()


def create_app(settings: EdgeSettings | None = None) -> web.Application:
    settings = settings or EdgeSettings()
    app = web.Application(
        middlewares=[observe, envelope_middleware, check_host, check_origin],
        client_max_size=settings.max_upload_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(realtime.client_secret_store)
    app.cleanup_ctx.append(_jobs)
    app[realtime.OPEN] = set()
    app[bounds.CLIENTS] = Counter()
    app.on_shutdown.append(realtime.close_sessions)
    app.on_shutdown.append(stop_watching)  # before the server waits for its handlers
    app.on_response_prepare.append(echo_request_id)
    app.on_response_prepare.append(allow_origin)
    app.on_response_prepare.append(note_answered)
    app.on_response_prepare.append(tee_for_capture)
    modules = (
        health,
        models,
        transcriptions,
        realtime,
        speech,
        chat,
        metrics,
        admin,
        admin_page,
        openapi,
        jobs,
    )
    for module in modules:
        app.add_routes(module.routes)
    return app

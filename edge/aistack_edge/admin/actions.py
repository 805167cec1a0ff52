"""What the admin page can do to a backend: unload its models, reusing the hot-swap calls."""

import asyncio

import aiohttp
from aiohttp import web

from aistack_edge.admin.status import evict_call
from aistack_edge.errors import malformed, unavailable
from aistack_edge.hotswap import evict_asr, unload_ollama
from aistack_edge.state import CATALOG, SESSION, SETTINGS


async def evict(app: web.Application, url: str) -> list[str]:
    """The configured backend at `url` unloads its idle models; the ones it unloaded."""
    settings, session = app[SETTINGS], app[SESSION]
    call = evict_call(settings, url)
    if call is None:
        raise malformed(f"{url!r} is not a configured backend that can unload its models")
    try:
        # Ollama: its listing and then the unloads, each bounded by the swap timeout.
        async with asyncio.timeout(settings.swap_timeout_s * 2):
            if call == "asr":
                evicted = await evict_asr(session, url)
            else:
                evicted = await unload_ollama(session, url, settings.swap_timeout_s)
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        raise unavailable(f"{url} did not unload: {exc or type(exc).__name__}") from None
    app[CATALOG].forget()
    return evicted

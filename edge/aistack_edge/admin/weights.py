"""The admin page's weights panel: each backend's models present, missing or being
fetched, and a pull's progress. The edge mounts no model volume, so it asks the backends
(`GET /weights`, `POST /weights/pull`: aistack_service.weights_routes) and passes on what
they answer; a backend without those routes (tts-piper, vLLM-Omni, Ollama) is left out."""

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from aistack_edge.config import EdgeSettings
from aistack_edge.errors import malformed, unavailable
from aistack_edge.state import CATALOG, SESSION, SETTINGS


def candidates(settings: EdgeSettings) -> list[tuple[str, str]]:
    """(capability, url) of each backend that may keep weights of its own."""
    return [
        *(("asr", url) for url in settings.asr_backends),
        *(("diarize", url) for url in settings.diarize_backends),
        *(("tts", url) for url in settings.tts_backends),
    ]


async def weights(app: web.Application) -> list[dict]:
    """Each backend's `GET /weights`, asked side by side; one that can't say is shown
    with why, one without the route (or down at the latest probe) not at all."""
    settings, session = app[SETTINGS], app[SESSION]
    timeout = aiohttp.ClientTimeout(total=settings.probe_timeout_s * 5)

    async def ask(capability: str, url: str) -> dict | None:
        row: dict = {"capability": capability, "url": url}
        try:
            async with session.get(url + "/weights", timeout=timeout) as answer:
                if answer.status == 404:
                    return None
                answer.raise_for_status()
                return row | await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return row | {"error": str(exc) or type(exc).__name__}

    # One the catalog's latest probe found down is in the backends panel already.
    down = {url for _, url, up in app[CATALOG].backend_states() if not up}
    asked = [ask(c, u) for c, u in candidates(settings) if u not in down]
    return [row for row in await asyncio.gather(*asked) if row is not None]


async def pull(app: web.Application, url: object, repo: object) -> "Pull":
    """The backend's pull of `repo` begun: its progress lines to pass on, or its refusal
    (an envelope) as the backend gave it."""
    if url not in {u for _, u in candidates(app[SETTINGS])}:
        raise malformed(f"{url!r} is not a configured backend that keeps weights")
    if not isinstance(repo, str) or not repo:
        raise malformed('name the model by its hub id: {"backend": "...", "repo": "org/name"}')
    # A pull lasts as long as its files take; the backend's reads time out on their own.
    timeout = aiohttp.ClientTimeout(total=None, connect=app[SETTINGS].probe_timeout_s * 5)
    try:
        answer = await app[SESSION].post(f"{url}/weights/pull", json={"repo": repo},
                                         timeout=timeout)  # fmt: skip
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unavailable(f"{url} did not answer: {exc or type(exc).__name__}") from None
    return Pull(answer)


class Pull:
    """A backend's answer to a pull: a refusal to relay, or lines to stream."""

    def __init__(self, answer: aiohttp.ClientResponse) -> None:
        self.answer = answer

    async def refusal(self) -> web.Response | None:
        """None when the pull began; else the backend's envelope with its status, or, from
        a backend with no such route (vLLM-Omni answers its own 404), the edge's own."""
        if self.answer.status == 200:
            return None
        async with self.answer:
            try:
                body = await self.answer.json(content_type=None)
            except ValueError:
                body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return web.json_response(body, status=self.answer.status)
        origin = self.answer.url.origin()
        raise unavailable(f"{origin} keeps no weights to pull (it answered {self.answer.status})")

    async def lines(self) -> AsyncIterator[bytes]:
        async with self.answer:
            async for line in self.answer.content:
                yield line

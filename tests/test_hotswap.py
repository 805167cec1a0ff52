"""make_room, the VRAM hot-swap policy, over real HTTP: who is asked to evict for each
capability, Ollama's unload protocol (against aistack_testing.ollama, the fake written
from Ollama's source: an unload is answered before the runner is gone), and failures that
must not fail a request. (A chat evicting the real asr-whisper's model is in test_chat.py.)"""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from aistack_edge.config import EdgeSettings
from aistack_edge.hotswap import make_room
from aistack_edge.state import SESSION, SETTINGS
from aistack_testing.asr_protocol import wait_until
from aistack_testing.ollama import FOREVER, FakeOllama
from aistack_testing.processes import free_port


class AsrDouble:
    """An ASR backend's `POST /evict` (the internal protocol), counting the calls."""

    def __init__(self) -> None:
        self.evictions = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/evict", self.evict)

    async def evict(self, request: web.Request) -> web.Response:
        self.evictions += 1
        return web.json_response({"evicted": ["whisper-small"]})


def loaded_ollama(*models: str) -> FakeOllama:
    ollama = FakeOllama(models)
    ollama.loaded = dict.fromkeys(models, FOREVER)
    return ollama


async def gone(ollama: FakeOllama) -> bool:
    return not ollama.loaded


@pytest.fixture
async def serve() -> AsyncIterator:
    """serve(double) runs an aiohttp server with the double's routes; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(double) -> str:
        app = web.Application()
        double.add_routes(app)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def edge_app(**settings) -> AsyncIterator[web.Application]:
    """What make_room needs of the edge's application: its settings and its session."""
    app = web.Application()
    app[SETTINGS] = EdgeSettings(**settings)
    async with aiohttp.ClientSession() as session:
        app[SESSION] = session
        yield app


@pytest.mark.parametrize(
    ("capability", "asr_evicts", "ollama_unloads"),
    [("asr", 0, True), ("tts", 1, True), ("llm", 1, False)],
)
async def test_other_capabilities_make_room(serve, capability, asr_evicts, ollama_unloads):
    ollama, asr_a, asr_b = loaded_ollama("qwen3:4b", "llama3.2:1b"), AsrDouble(), AsrDouble()
    settings = {
        "ollama_url": await serve(ollama),
        "asr_backends": [await serve(asr_a), await serve(asr_b)],
    }
    async with edge_app(**settings) as app:
        await make_room(app, capability)
    assert (asr_a.evictions, asr_b.evictions) == (asr_evicts, asr_evicts)
    if ollama_unloads:
        assert sorted(u["model"] for u in ollama.unloads) == ["llama3.2:1b", "qwen3:4b"]
        assert all(u == {"model": u["model"], "keep_alive": 0} for u in ollama.unloads)
        await wait_until(lambda: gone(ollama), 10)  # Ollama's runners go afterwards
    else:
        assert ollama.unloads == [] and len(ollama.loaded) == 2


async def test_shared_policy_evicts_nothing(serve):
    ollama, asr = loaded_ollama("qwen3:4b"), AsrDouble()
    settings = {"ollama_url": await serve(ollama), "asr_backends": [await serve(asr)]}
    async with edge_app(swap_policy="shared", **settings) as app:
        await make_room(app, "tts")
    assert asr.evictions == 0 and ollama.unloads == []


class Hanging:
    """A backend that never answers; `waiting` (shared between instances, when given)
    counts the calls it holds at once, and `most` the most it ever held."""

    def __init__(self, waiting: Counter | None = None) -> None:
        self.forever = asyncio.Event()
        self.waiting = waiting if waiting is not None else Counter()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.hang)

    async def hang(self, request: web.Request) -> web.Response:
        self.waiting["now"] += 1
        self.waiting["most"] = max(self.waiting["most"], self.waiting["now"])
        try:
            await self.forever.wait()
        finally:
            self.waiting["now"] -= 1
        return web.json_response({})


class Refusing:
    """A backend that answers every call with a 500."""

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.refuse)

    async def refuse(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "out of memory"}, status=500)


async def test_failures_are_logged_and_bounded_never_raised(serve, caplog):
    waiting: Counter = Counter()
    hanging, hanging_ollama, healthy = Hanging(waiting), Hanging(waiting), AsrDouble()
    settings = {
        "asr_backends": [
            await serve(hanging),
            await serve(Refusing()),
            f"http://127.0.0.1:{free_port()}",
            await serve(healthy),
        ],
        "ollama_url": await serve(hanging_ollama),
        "swap_timeout_s": 0.3,
    }
    caplog.set_level(logging.WARNING, logger="aistack_edge.hotswap")
    async with edge_app(**settings) as app:
        await make_room(app, "tts")  # returned while both backends still hang: bounded
    hanging.forever.set()
    hanging_ollama.forever.set()
    assert waiting["most"] == 2  # the two hanging calls were held at once: concurrent
    assert healthy.evictions == 1
    assert len([r for r in caplog.records if "did not make room" in r.message]) == 4


async def test_an_asr_workload_evicts_the_other_asr_backends(serve):
    """Under `exclusive`, Whisper, Parakeet and SenseVoice each hold gigabytes: before one
    transcribes, the others' idle models leave the GPU (the one that serves keeps its own)."""
    serving, other, third = AsrDouble(), AsrDouble(), AsrDouble()
    urls = [await serve(serving), await serve(other), await serve(third)]
    async with edge_app(asr_backends=urls) as app:
        await make_room(app, "asr", urls[0])
    assert (serving.evictions, other.evictions, third.evictions) == (0, 1, 1)

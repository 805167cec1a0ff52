"""Serving a test's in-process double of a backend over real HTTP."""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Self, TypeVar

from aiohttp import web

from aistack_testing.processes import free_port


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """`app` served on a free loopback port for the block; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Served:
    """A fake server whose `app()` runs for an `async with` block (or between start()
    and stop()) on a free loopback port; `url` is its base URL meanwhile."""

    url = ""
    _served: contextlib.AbstractAsyncContextManager[str] | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> Self:
        self._served = serving(self.app())
        self.url = await self._served.__aenter__()
        return self

    async def stop(self) -> None:
        if self._served is not None:
            await self._served.__aexit__(None, None, None)
            self._served = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


F = TypeVar("F", bound=Served)


@contextlib.contextmanager
def in_thread(fake: F) -> Iterator[F]:
    """`fake` served for the block from an event loop of its own in a thread: for tests
    that are not async (or whose loop ends before the fake should)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

"""Serving a test's in-process double of a backend over real HTTP."""

import contextlib
from collections.abc import AsyncIterator
from typing import Self

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

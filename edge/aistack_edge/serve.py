"""Serving the edge app: aiohttp's runner, but what its HTTP parser refuses is the envelope.

A request that aiohttp's parser can't read (a broken request line, a header with a
control character, two Content-Lengths, a bad chunk) never reaches the app's
middleware: the connection's handler answers it itself, with a text/plain 400 and a
logged traceback. Here that answer is the error envelope, logged as one line.
"""

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from aistack_contract.errors import AistackError, kind_for_status
from aistack_edge.middleware import REQUEST_ID, error_response, request_id_of

log = logging.getLogger(__name__)


class _EnvelopeHandler(RequestHandler):
    """A connection whose own error answers (the parser's, a handler's escape) are the
    envelope."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("error serving %s", request.remote, exc_info=exc)
        else:
            log.info("refused an unreadable request from %s: %s", request.remote, message or exc)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already begun: the connection is dropped")
        text = message or (str(exc) if exc else "") or "the request could not be read"
        error = AistackError(kind_for_status(status), text.strip())
        response = error_response(error, status=status)
        response.headers[REQUEST_ID] = request_id_of(request)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """After an answer, aiohttp drains what is left of the body: one that can't be
        read (a broken gzip stream, already refused) is no error of the edge's."""
        if isinstance(kw.get("exc_info"), RequestPayloadError):
            log.info("dropped a connection whose body could not be read: %s", kw["exc_info"])
            return
        super().log_exception(*args, **kw)


class _EnvelopeServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _EnvelopeHandler(self, loop=self._loop, **self._kwargs)


class EdgeRunner(web.AppRunner):
    """An AppRunner whose connections answer with `_EnvelopeHandler`."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return _EnvelopeServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            **plain._kwargs,
        )


async def serve(app: web.Application, host: str, port: int, listening: Callable[[], None]) -> None:
    """Serve `app` until SIGINT or SIGTERM, then clean it up.

    The signals set an event rather than raise aiohttp's GracefulExit: raised out of the
    loop, asyncio.run would cancel every task at once, the connections' handlers racing
    the cleanup that should close them in order (a realtime session's 1001 close frame
    lost to its own handler's cancellation)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = EdgeRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        listening()
        await stop.wait()
    finally:
        await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

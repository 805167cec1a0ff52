"""Answers read from the backend at the backend's pace, written to the client at the
client's: a client that stops reading cannot hold the GPU slot.

A relay reads its upstream in the request's own task and hands each piece to an
`Outbox`, which never waits on the client: it keeps what is unsent in memory up to a
small bound, then in the spooler's temporary files (libs/service), while a writer task
of its own sends it on. So the upstream's answer is read to its end, the workload ends
and the slot is released when the backend is done, whatever the client reads.

A write that makes no progress for AISTACK_CLIENT_WRITE_TIMEOUT_S (the client read
nothing meanwhile) is a hang-up: the connection is aborted, and aiohttp then cancels the
request's handler as at any hang-up (the edge runs with `handler_cancellation`), so a
workload still in progress is stopped the usual way.

    upstream ──(backend's pace)──▶ request task ──put──▶ Backlog ──▶ writer task ──▶ client
                                   (workload, slot)     (memory, then spool)   (write timeout)
"""

import asyncio
import contextlib
import logging
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

from aiohttp import web

from aistack_edge.state import SETTINGS
from aistack_service.spool import Spool

log = logging.getLogger(__name__)

MEMORY_BOUND = 256 << 10
"""Unsent bytes kept in memory per answer; past it they go to a temporary file."""
PIECE = 64 << 10
"""The most one write hands the connection: aiohttp waits for the client (drains) past
64 KiB buffered, so each timed write is one wait for the client to read."""
_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, for 0 s: closing the socket resets the connection."""


class Backlog:
    """A first-in first-out queue of bytes: in memory up to `bound`, then in `Spool`s.

    `spill=False` keeps everything in memory (whole messages, a WebSocket's): `put`
    then answers False once `bound` is passed."""

    def __init__(self, bound: int = MEMORY_BOUND, spill: bool = True) -> None:
        self._parts: deque[bytes | Spool] = deque()
        self._in_memory = 0
        self._bound, self._spill = bound, spill
        self._lock = asyncio.Lock()
        """Held while a part is added or taken: a spool being written is never read."""
        self._more = asyncio.Event()
        self._ended = False
        self._spool: Spool | None = None
        self._reading: BinaryIO | None = None

    async def put(self, data: bytes) -> bool:
        """Add `data` at the end; False if it did not fit (in memory, without spill)."""
        if not data:
            return True
        async with self._lock:
            last = self._parts[-1] if self._parts else None
            if isinstance(last, Spool):
                await last.write(data)
            elif self._in_memory + len(data) <= self._bound:
                self._parts.append(bytes(data))
                self._in_memory += len(data)
            elif not self._spill:
                return False
            else:
                spool = Spool(threshold=self._bound)
                self._parts.append(spool)
                await spool.write(data)
        self._more.set()
        return True

    def end(self) -> None:
        """Nothing more will be put: `get` answers None once all is taken."""
        self._ended = True
        self._more.set()

    async def get(self) -> bytes | None:
        """The next bytes, waiting for them; None at the end."""
        while True:
            if self._reading is not None:
                if data := await asyncio.to_thread(self._reading.read, PIECE):
                    return data
                self._close_spool()
            async with self._lock:
                part = self._parts.popleft() if self._parts else None
                if part is None and not self._ended:
                    self._more.clear()
            if isinstance(part, Spool):
                self._spool = part
                self._reading = await asyncio.to_thread(part.reader)
            elif part is not None:
                self._in_memory -= len(part)
                return part
            elif self._ended:
                return None
            else:
                await self._more.wait()

    def close(self) -> None:
        """Drop what is left: its temporary files removed."""
        self._close_spool()
        for part in self._parts:
            if isinstance(part, Spool):
                part.close()
        self._parts.clear()
        self._in_memory = 0

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
        self._spool, self._reading = None, None


class Outbox:
    """What goes to one client, sent by a writer task of its own from a `Backlog`.

    `write` sends one piece, `end` (if any) ends the answer, `abort` cuts the connection;
    each may take up to `timeout_s` before the client counts as gone."""

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[object]],
        end: Callable[[], Awaitable[object]] | None,
        abort: Callable[[], object],
        timeout_s: float,
        backlog: Backlog | None = None,
        pieces: bool = True,
    ) -> None:
        self._write, self._end, self._abort = write, end, abort
        self._timeout_s = timeout_s
        self._backlog = backlog or Backlog()
        self._pieces = pieces
        self.gone = False
        """Set once the client was found gone (a write failed or timed out)."""
        self._task = asyncio.create_task(self._send_all())

    async def put(self, data: bytes) -> None:
        """Queue `data` for the client; never waits on it. To a client found gone,
        nothing (its request is being ended as a hang-up)."""
        if self.gone:
            return
        if not await self._backlog.put(data):
            self._give_up(f"more than {MEMORY_BOUND >> 10} KiB unread")

    async def close(self) -> None:
        """Everything was put: wait until it has been sent (or the client is found gone)."""
        self._backlog.end()
        try:
            await asyncio.wait([self._task])
        except asyncio.CancelledError:
            await self.cancel()
            raise

    async def cancel(self) -> None:
        """Stop sending (a hang-up, an error): what is unsent is dropped."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _send_all(self) -> None:
        try:
            while (data := await self._backlog.get()) is not None:
                step = PIECE if self._pieces else len(data)
                for start in range(0, len(data), step):
                    async with asyncio.timeout(self._timeout_s):
                        await self._write(data[start : start + step])
            if self._end is not None:
                async with asyncio.timeout(self._timeout_s):
                    await self._end()
        except TimeoutError:
            self._give_up(f"nothing read for {self._timeout_s:g} s")
        except ConnectionError as exc:
            self._give_up(str(exc) or type(exc).__name__)
        finally:
            self._backlog.close()

    def _give_up(self, why: str) -> None:
        if self.gone:
            return
        self.gone = True
        log.info("the client is gone (%s): its connection is closed", why)
        self._abort()
        if asyncio.current_task() is not self._task:
            self._task.cancel()


def write_timeout_s(request: web.Request) -> float:
    return request.app[SETTINGS].client_write_timeout_s


def _abort(request: web.Request) -> Callable[[], None]:
    def abort() -> None:
        transport = request.transport
        if transport is None:
            return
        # A reset, not a FIN: a FIN would wait behind the unsent bytes for a client
        # that reads nothing (and the kernel would keep them for minutes).
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        transport.abort()

    return abort


@contextlib.asynccontextmanager
async def outbox(request: web.Request, response: web.StreamResponse) -> AsyncIterator[Outbox]:
    """An outbox for the prepared `response`: within the block, put the answer's bytes;
    leaving it normally waits until they are sent and the answer is ended; leaving it
    on an error drops what is unsent (the caller decides what the client sees)."""
    box = Outbox(response.write, response.write_eof, _abort(request), write_timeout_s(request))
    try:
        yield box
    except BaseException:
        await box.cancel()
        raise
    await box.close()


def message_outbox(request: web.Request, ws: web.WebSocketResponse) -> Outbox:
    """An outbox of whole text messages for a WebSocket: kept in memory (they are small),
    a client a full bound behind counts as gone."""

    async def send(message: bytes) -> None:
        await ws.send_str(message.decode())

    backlog = Backlog(spill=False)
    return Outbox(send, None, _abort(request), write_timeout_s(request), backlog, pieces=False)


async def deliver(request: web.Request, answer: web.Response) -> web.StreamResponse:
    """Send a whole answer (its body in memory) through an outbox: the write timeout
    holds for it too. The answer returned is the one sent."""
    body = answer.body
    assert isinstance(body, bytes | bytearray), "deliver takes an answer with a body in bytes"
    sent = web.StreamResponse(status=answer.status, reason=answer.reason, headers=answer.headers)
    sent.content_length = len(body)
    await sent.prepare(request)
    async with outbox(request, sent) as box:
        await box.put(bytes(body))
    return sent

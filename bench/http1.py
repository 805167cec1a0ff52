"""Bare HTTP/1.1 connections, for timing answers where they happen: each request is
stamped as its bytes are written and its answer as its bytes arrive, with no client
library's own work in between (h11 only parses what came in)."""

import asyncio
import time
from dataclasses import dataclass, field

import h11


@dataclass
class Answer:
    """One request's answer and its times (`time.perf_counter()` seconds)."""

    sent: float
    status: int = 0
    first: float | None = None
    """When the first bytes of its body arrived."""
    end: float = 0.0
    body: bytearray = field(default_factory=bytearray)

    @property
    def seconds(self) -> float:
        """From the request's send to the end of its answer."""
        return self.end - self.sent


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self._h11 = h11.Connection(h11.CLIENT)
        self._transport: asyncio.Transport | None = None
        self._answer: Answer | None = None
        self._done: asyncio.Future[Answer] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        _, connection = await asyncio.get_running_loop().create_connection(cls, host, port)
        return connection

    def encode(self, method: str, path: str, body: bytes = b"", json: bool = False) -> bytes:
        """The bytes of one request, made before `send` so that they are not timed."""
        headers = [("Host", "localhost"), ("Content-Length", str(len(body)))]
        if json:
            headers.append(("Content-Type", "application/json"))
        request = h11.Request(method=method, target=path, headers=headers)
        return b"".join(
            self._h11.send(event) or b""
            for event in (request, h11.Data(data=body), h11.EndOfMessage())
        )

    def send(self, data: bytes) -> "asyncio.Future[Answer]":
        """Write a request that `encode` made; the future holds its answer."""
        assert self._transport is not None and self._done is None
        self._done = asyncio.get_running_loop().create_future()
        self._answer = Answer(sent=time.perf_counter())
        self._transport.write(data)
        return self._done

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        answer = self._answer
        assert answer is not None and self._done is not None
        self._h11.receive_data(data)
        while (event := self._h11.next_event()) is not h11.NEED_DATA:
            if isinstance(event, h11.Response):
                answer.status = event.status_code
            elif isinstance(event, h11.Data):
                answer.first = answer.first or now
                answer.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                answer.end = now
                self._h11.start_next_cycle()
                done, self._done, self._answer = self._done, None, None
                done.set_result(answer)
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc or ConnectionError("the edge closed the connection"))

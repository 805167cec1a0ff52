"""Blocking work on a thread of its own, its items handed to the event loop one by one:
how the ASR shell runs a transcription (the model's load included) and tts-piper a
synthesis, off the event loop."""

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from aistack_contract.jobs import current_job

_END = object()

Work = Callable[[threading.Event], Generator[Any, None, None]]


class Worker:
    """Runs `work(cancel)` on a thread; `next()` awaits its items one at a time.

    Setting `cancel` (or calling `stop`) makes the thread close the generator
    after the item it is producing, so the work's `finally`/`with` blocks run.
    """

    def __init__(self, work: Work, name: str) -> None:
        self.name = name
        self.cancel = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._ended: asyncio.Future[None] = self._loop.create_future()
        self.started_at: float | None = None
        """When the thread began (wall clock), and when it ended: the work's compute."""
        self.ended_at: float | None = None
        # The work runs in a copy of the caller's context: its spans join the request's trace.
        run = contextvars.copy_context().run
        self._thread = threading.Thread(
            target=run, args=(self._run, work), name=f"worker-{name}", daemon=True
        )

    def start(self) -> None:
        """Start the thread; a job being tracked here (`Jobs.track`) goes on until it ends."""
        if (job := current_job()) is not None:
            job.runs(self)
        self._thread.start()

    def stop(self) -> None:
        self.cancel.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    async def finished(self) -> None:
        """Wait until the thread has ended: its model load and inference included."""
        await asyncio.shield(self._ended)

    def when_ended(self, callback: Callable[["Worker"], None]) -> None:
        """Call `callback(worker)` on the event loop once the thread has ended, whatever
        becomes of the request that started it."""
        self._ended.add_done_callback(lambda _: callback(self))

    def join(self, timeout: float) -> bool:
        """Wait (blocking) up to `timeout` s for the thread to end; whether it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    async def next(self) -> Any | None:
        """The next item, None at the end; re-raises what the work raised."""
        item = await self._queue.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def _run(self, work: Work) -> None:
        self.started_at = time.time()
        try:
            self._work(work)
        finally:
            self.ended_at = time.time()
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(_settle, self._ended)

    def _work(self, work: Work) -> None:
        items = work(self.cancel)
        try:
            try:
                for item in items:
                    if self.cancel.is_set():
                        break
                    self._put(item)
            finally:
                items.close()
        except Exception as exc:
            self._put(exc)
        finally:
            self._put(_END)

    def _put(self, item: Any) -> None:
        # RuntimeError: the loop has closed, nobody is listening any more
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

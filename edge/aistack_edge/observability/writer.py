"""A queue drained by one daemon thread: file writes kept off the event loop."""

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_STOP = object()
_LINGER_S = 0.1


class BackgroundWriter(Generic[T]):
    """`submit` never blocks; `write` runs on the thread for each item, in order, and
    `flush` after each batch the queue held. The thread waits `linger_s` after the
    first item of a batch for more to come."""

    def __init__(
        self,
        name: str,
        write: Callable[[T], None],
        flush: Callable[[], None] = lambda: None,
        linger_s: float = _LINGER_S,
    ) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._write = write
        self._flush = flush
        self._linger_s = linger_s
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        self._queue.put(item)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread (blocking)."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            # Let a batch gather: woken once per batch, not per item, the thread takes
            # the GIL from the event loop a few times a second at most.
            if self._linger_s:
                time.sleep(self._linger_s)
            while True:
                if item is _STOP:
                    self._safely(self._flush)
                    return
                self._safely(lambda item=item: self._write(item))
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._safely(self._flush)

    def _safely(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            log.exception("%s failed", self._thread.name)

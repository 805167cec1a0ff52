"""A queue drained by one daemon thread: file writes kept off the event loop."""

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_STOP = object()


class BackgroundWriter(Generic[T]):
    """`submit` never blocks; `write` runs on the thread for each item, in order."""

    def __init__(self, name: str, write: Callable[[T], None]) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._write = write
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        self._queue.put(item)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread (blocking)."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                self._write(item)  # type: ignore[arg-type]
            except Exception:
                log.exception("%s failed", self._thread.name)

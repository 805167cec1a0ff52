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
    """`submit` never blocks; `write` runs on the thread for each item, in order. With
    `max_queued`, an item that finds that many waiting is dropped (a slow disk must not
    make the queue hold ever more of what it writes)."""

    def __init__(self, name: str, write: Callable[[T], None], max_queued: int = 0) -> None:
        self._queue: queue.Queue[object] = queue.Queue(max_queued)
        self._write = write
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Queue `item`; False when it was dropped, the queue being full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread (blocking)."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("%s: still writing after %s s at close", self._thread.name, timeout)
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                self._write(item)  # type: ignore[arg-type]
            except Exception:
                log.exception("%s failed", self._thread.name)

"""Loaded models, ref-counted so that a model in use is never unloaded."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aistack_asr.metrics import EVICTIONS


@dataclass
class _Entry:
    model_id: str
    model: Any
    refs: int = 0
    last_used: float = 0.0


class ModelCache:
    """Holds loaded models; at most one idle one stays beside those in use.

    Thread-safe: `use` runs on worker threads, `evict_idle` on any thread.
    Loading another model first unloads every idle one (one main model resident).
    """

    def __init__(
        self,
        load: Callable[[str], Any],
        unload: Callable[[Any], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._unload = unload
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # guards _entries and the counts; held briefly
        self._load_lock = threading.Lock()  # one load at a time

    @contextmanager
    def use(self, model_id: str) -> Iterator[Any]:
        """The loaded model, loading it first if needed; it stays loaded while in use."""
        entry = self._acquire(model_id)
        try:
            yield entry.model
        finally:
            with self._lock:
                entry.refs -= 1
                entry.last_used = self._clock()

    def evict_idle(self, idle_for: float = 0.0) -> list[str]:
        """Unload models nobody uses that have been idle for `idle_for` seconds."""
        now = self._clock()
        with self._lock:
            victims = [
                e for e in self._entries.values() if e.refs == 0 and now - e.last_used >= idle_for
            ]
            for entry in victims:
                del self._entries[entry.model_id]
        for entry in victims:
            self._unload(entry.model)
            EVICTIONS.labels(entry.model_id).inc()
        return [entry.model_id for entry in victims]

    def loaded(self) -> set[str]:
        with self._lock:
            return set(self._entries)

    def in_use(self) -> dict[str, int]:
        """Model id -> how many users hold it now."""
        with self._lock:
            return {e.model_id: e.refs for e in self._entries.values() if e.refs}

    def _take(self, model_id: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is not None:
                entry.refs += 1
            return entry

    def _acquire(self, model_id: str) -> _Entry:
        entry = self._take(model_id)
        if entry is not None:
            return entry
        with self._load_lock:
            entry = self._take(model_id)  # loaded by another thread meanwhile
            if entry is not None:
                return entry
            self.evict_idle()
            model = self._load(model_id)
            entry = _Entry(model_id, model, refs=1, last_used=self._clock())
            with self._lock:
                self._entries[model_id] = entry
            return entry

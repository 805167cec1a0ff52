"""One JSON line per request, appended to `access-YYYY-MM-DD.jsonl` (UTC) in a directory.

Kept for a time and a size: a day's file that reaches an eighth of the total cap goes on
in a new part (`access-YYYY-MM-DD.1.jsonl`, ...), and whenever a file is opened or the
total passes the cap, files last written before the maximum age go, then the oldest
until the rest fits the cap (never the file being written).
"""

import asyncio
import logging
import time
from json.encoder import encode_basestring
from pathlib import Path
from typing import NamedTuple, TextIO

from aistack_edge.observability.writer import BackgroundWriter

log = logging.getLogger(__name__)


class AccessRecord(NamedTuple):
    """One request as the event loop hands it over: raw values, nothing formatted."""

    request_id: str
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    client: str | None
    at: float
    """Its end, epoch seconds: the line's `ts`, in ISO 8601 (UTC, milliseconds)."""
    capability: str
    model: str
    outcome: str
    latency_ms: float
    slot_wait_ms: float | None


BATCH_S = 0.1

# The line, field by field: a fixed shape, so no general JSON encoder is needed.
_LINE = (
    '{"request_id": %s, "method": %s, "path": %s, "status": %d, "bytes_in": %d, '
    '"bytes_out": %d, "client": %s, "ts": "%s", "capability": %s, "model": %s, '
    '"outcome": %s, "latency_ms": %r, "slot_wait_ms": %s}\n'
)


def line_of(entry: AccessRecord, ts: str) -> str:
    """The JSON line of `entry`, `ts` its time as ISO 8601."""
    text = encode_basestring
    client = "null" if entry.client is None else text(entry.client)
    wait = "null" if entry.slot_wait_ms is None else repr(entry.slot_wait_ms)
    return _LINE % (
        text(entry.request_id), text(entry.method), text(entry.path), entry.status,
        entry.bytes_in, entry.bytes_out, client, ts, text(entry.capability),
        text(entry.model), text(entry.outcome), entry.latency_ms, wait,
    )  # fmt: skip


class AccessLog:
    """The event loop only gathers `AccessRecord`s, and hands them over every BATCH_S to a
    thread of their own, which makes the lines and appends them in one write. Handed
    over (and the thread woken) once per request, the handovers would cost the loop more
    than the lines: each takes the GIL back and forth between the two threads."""

    def __init__(
        self, directory: Path, max_age_s: float = float("inf"), max_total_bytes: int = 0
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._max_age_s = max_age_s
        self._max_total_bytes = max_total_bytes
        self._part_bytes = max_total_bytes // 8
        self._total = 0
        self._part = 0
        self._day = ""
        self._second, self._second_text = -1, ""
        self._file: TextIO | None = None
        self._gathered: list[AccessRecord] = []
        self.sweep()  # what aged out while the edge was down
        self._writer: BackgroundWriter[list[AccessRecord]] = BackgroundWriter(
            "access-log", self._write
        )

    def write(self, entry: AccessRecord) -> None:
        """Queue one line (on the event loop)."""
        if not self._gathered:
            asyncio.get_running_loop().call_later(BATCH_S, self._hand_over)
        self._gathered.append(entry)

    def close(self) -> None:
        self._hand_over()
        self._writer.close()
        if self._file is not None:
            self._file.close()

    def _hand_over(self) -> None:
        if self._gathered:
            self._writer.submit(self._gathered)
            self._gathered = []

    def _write(self, entries: list[AccessRecord]) -> None:
        lines: list[str] = []
        for entry in entries:
            ts = self._ts(entry.at)
            if ts[:10] != self._day:
                self._append(lines)  # the lines of the day before, to its file
                self._day = ts[:10]
            lines.append(line_of(entry, ts))
        self._append(lines)

    def _ts(self, at: float) -> str:
        """`at` in ISO 8601, UTC, cut to the millisecond; the date and time of its
        second are made once per second."""
        ms = int(at * 1000)
        second = ms // 1000
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{ms % 1000:03d}+00:00"

    def _append(self, lines: list[str]) -> None:
        """Append `lines` to the current day's file, in one write per part, and empty the
        list."""
        if not lines:
            return
        if self._file is None or not Path(self._file.name).name.startswith(f"access-{self._day}"):
            self._open(0)
        start = 0
        while start < len(lines):
            end, room = start, self._room()
            while end < len(lines) and (room > 0 or end == start):
                room -= len(lines[end])
                end += 1
            self._write_text("".join(lines[start:end]))
            start = end
            if start < len(lines) or self._room() <= 0:
                self._open(self._part + 1)
        lines.clear()
        if self._max_total_bytes and self._total > self._max_total_bytes:
            self.sweep()

    def _room(self) -> float:
        """What the current part may still take (characters, about bytes)."""
        assert self._file is not None
        return self._part_bytes - self._file.tell() if self._part_bytes else float("inf")

    def _write_text(self, text: str) -> None:
        assert self._file is not None
        self._file.write(text)
        self._file.flush()
        self._total += len(text)

    def _open(self, part: int) -> None:
        """Open part `part` of the current day's file (the next free one past an existing
        part), then sweep."""
        if self._file is not None:
            self._file.close()
        while True:
            suffix = f".{part}" if part else ""
            path = self.directory / f"access-{self._day}{suffix}.jsonl"
            too_big = self._part_bytes and path.exists() and path.stat().st_size >= self._part_bytes
            if not too_big:
                break
            part += 1
        self._part = part
        self._file = path.open("a", encoding="utf-8")
        self.sweep()

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete files past the maximum age, then the oldest past the total cap; the
        names deleted. Runs on the writer thread (or before it starts)."""
        now = time.time() if now is None else now
        current = Path(self._file.name).name if self._file is not None else None
        files = []
        for path in self.directory.glob("access-*.jsonl"):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            files.append((info.st_mtime, path.name, info.st_size, path))
        files.sort()
        total = sum(size for _, _, size, _ in files)
        deleted = []
        for mtime, name, size, path in files:
            old = now - mtime > self._max_age_s
            over = self._max_total_bytes and total > self._max_total_bytes
            if name == current or not (old or over):
                continue
            try:
                path.unlink()
            except OSError as exc:
                log.warning("access log: could not delete %s: %s", path, exc)
                continue
            total -= size
            deleted.append(name)
        self._total = total
        return deleted

"""One JSON line per request, appended to `access-YYYY-MM-DD.jsonl` (UTC) in a directory."""

import asyncio
import time
from json.encoder import encode_basestring
from pathlib import Path
from typing import NamedTuple, TextIO

from aistack_edge.observability.writer import BackgroundWriter


class Entry(NamedTuple):
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


def line_of(entry: Entry, ts: str) -> str:
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
    """The event loop only gathers `Entry`s, and hands them over every BATCH_S to a
    thread of their own, which makes the lines and appends them in one write. Handed
    over (and the thread woken) once per request, the handovers would cost the loop more
    than the lines: each takes the GIL back and forth between the two threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._day = ""
        self._second, self._second_text = -1, ""
        self._file: TextIO | None = None
        self._gathered: list[Entry] = []
        self._writer: BackgroundWriter[list[Entry]] = BackgroundWriter("access-log", self._write)

    def write(self, entry: Entry) -> None:
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

    def _write(self, entries: list[Entry]) -> None:
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
        """Append `lines` to the current day's file in one write, and empty the list."""
        if not lines:
            return
        name = f"access-{self._day}.jsonl"
        if self._file is None or not self._file.name.endswith(name):
            if self._file is not None:
                self._file.close()
            self._file = (self.directory / name).open("a", encoding="utf-8")
        self._file.write("".join(lines))
        self._file.flush()
        lines.clear()

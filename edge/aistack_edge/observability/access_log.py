"""One JSON line per request, appended to `access-YYYY-MM-DD.jsonl` (UTC) in a directory."""

import json
from pathlib import Path
from typing import TextIO

from aistack_edge.observability.writer import BackgroundWriter


class AccessLog:
    """Lines are serialised and written on a thread of their own, never on the loop."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._day = ""
        self._file: TextIO | None = None
        self._writer: BackgroundWriter[dict] = BackgroundWriter(
            "access-log", self._write, self._flush
        )

    def write(self, line: dict) -> None:
        """Queue one line; `line["ts"]` (ISO 8601, UTC) names the day's file."""
        self._writer.submit(line)

    def close(self) -> None:
        self._writer.close()
        if self._file is not None:
            self._file.close()

    def _write(self, line: dict) -> None:
        day = line["ts"][:10]
        if day != self._day or self._file is None:
            if self._file is not None:
                self._file.close()
            self._file = (self.directory / f"access-{day}.jsonl").open("a", encoding="utf-8")
            self._day = day
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")

    def _flush(self) -> None:
        if self._file is not None:
            self._file.flush()

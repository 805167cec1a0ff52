"""Payload capture: each request's and answer's headers and bodies in a directory.

Every exchange gets a folder `<UTC time>-<request id>` under the capture directory,
the id reduced to `[A-Za-z0-9_-]` first, so that no id can name a path outside it.
Credentials are redacted (headers that carry them, and like-named JSON members); each
body is cut at a size cap; entries older than the maximum age go, then the oldest
until the whole fits the total size cap. Files are written on a thread of their own,
from a queue of bounded length (an exchange that finds it full is dropped and counted),
readable by the edge's user only (folders 0700, files 0600): bodies are other people's
words and voices.
"""

import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote

from aistack_edge.observability.writer import BackgroundWriter

REDACTED = "[redacted]"
_SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        # a browser's key offered as a WebSocket subprotocol (openai-insecure-api-key.<key>)
        "sec-websocket-protocol",
    }
)
_SENSITIVE_WORDS = ("token", "secret", "password", "api-key", "api_key", "apikey")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# A JSON member whose name holds a sensitive word or is `authorization`, and its string.
_SECRET_MEMBER = re.compile(
    rb'("[^"]*(?:token|secret|password|api[-_]?key|authorization|cookie)[^"]*"\s*:\s*)'
    rb'"(?:[^"\\]|\\.)*"?',
    re.IGNORECASE,
)
# A realtime client secret (`ek_...`, the `value` of POST /v1/realtime/client_secrets).
_CLIENT_SECRET = re.compile(rb'"ek_(?:[^"\\]|\\.)*"?')


@dataclass(frozen=True)
class Captured:
    request_id: str
    ts: dt.datetime
    method: str
    path: str
    status: int
    request_headers: Iterable[tuple[str, str]]
    response_headers: Iterable[tuple[str, str]]
    request_body: bytes
    request_size: int
    response_body: bytes
    response_size: int


def safe_name(request_id: str) -> str:
    """`request_id` as one path component that can't leave its directory."""
    return _UNSAFE.sub("_", request_id)[:128] or "_"


def _sensitive(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SENSITIVE_HEADERS or any(word in lowered for word in _SENSITIVE_WORDS)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, REDACTED if _sensitive(name) else value) for name, value in headers]


def redact_query(path_qs: str) -> str:
    """`path_qs` with the value of every query parameter redacted, the names kept: a
    query may carry a key (`?api_key=`) under any name."""
    path, sep, query = path_qs.partition("?")
    if not sep:
        return path
    names = [quote(name, safe="") for name, _ in parse_qsl(query, keep_blank_values=True)]
    return path + "?" + "&".join(f"{name}={REDACTED}" for name in names)


def _write_private(path: Path, data: bytes) -> None:
    """Write a new file that only the edge's user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def redact_body(body: bytes) -> bytes:
    """`body` with the string value of every credential-like JSON member redacted
    (whole or cut short, JSON or not: the pattern needs no parse)."""
    body = _SECRET_MEMBER.sub(rb'\1"' + REDACTED.encode() + rb'"', body)
    return _CLIENT_SECRET.sub(b'"' + REDACTED.encode() + b'"', body)


class Capture:
    def __init__(
        self,
        directory: Path,
        max_body_bytes: int,
        max_age_s: float,
        max_total_bytes: int,
        max_queued: int = 64,
    ) -> None:
        self.directory = directory.resolve()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)  # one made before, with the default umask, too
        self.max_body_bytes = max_body_bytes
        self._max_age_s = max_age_s
        self._max_total_bytes = max_total_bytes
        self.dropped = 0
        self._writer: BackgroundWriter[Captured] = BackgroundWriter(
            "capture", self._write, max_queued
        )

    def submit(self, captured: Captured) -> bool:
        """Queue an exchange to write; False (and counted) when the queue is full."""
        if self._writer.submit(captured):
            return True
        self.dropped += 1
        return False

    def close(self) -> None:
        self._writer.close()

    def _write(self, item: Captured) -> None:
        stamp = item.ts.strftime("%Y%m%dT%H%M%S%fZ")
        folder = self.directory / f"{stamp}-{safe_name(item.request_id)}"
        if folder.resolve().parent != self.directory:
            raise ValueError(f"refusing to capture outside {self.directory}: {folder}")
        # Written aside and renamed into place: a reader sees an entry whole or not at all.
        partial = self.directory / f".{folder.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # left by a crash mid-write
        partial.mkdir(mode=0o700)
        meta = {
            "request_id": item.request_id,
            "ts": item.ts.isoformat(timespec="milliseconds"),
            "method": item.method,
            "path": redact_query(item.path),
            "status": item.status,
            "request_headers": redact_headers(item.request_headers),
            "response_headers": redact_headers(item.response_headers),
            "request_bytes": item.request_size,
            "response_bytes": item.response_size,
            "max_body_bytes": self.max_body_bytes,
        }
        _write_private(
            partial / "meta.json", json.dumps(meta, indent=1, ensure_ascii=False).encode()
        )
        cap = self.max_body_bytes
        _write_private(partial / "request.body", redact_body(item.request_body[:cap]))
        _write_private(partial / "response.body", redact_body(item.response_body[:cap]))
        partial.rename(folder)
        self.sweep()

    def sweep(self, now: dt.datetime | None = None) -> list[str]:
        """Delete entries past the maximum age, then the oldest past the total size cap;
        the names deleted."""
        now_s = (now or dt.datetime.now(dt.UTC)).timestamp()
        entries = []
        for folder in self.directory.iterdir():
            if folder.is_dir() and not folder.is_symlink():
                files = [f.stat() for f in folder.iterdir() if f.is_file()]
                mtime = max((s.st_mtime for s in files), default=folder.stat().st_mtime)
                entries.append((mtime, sum(s.st_size for s in files), folder))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        deleted = []
        for mtime, size, folder in entries:
            if now_s - mtime <= self._max_age_s and total <= self._max_total_bytes:
                break
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            deleted.append(folder.name)
        return deleted

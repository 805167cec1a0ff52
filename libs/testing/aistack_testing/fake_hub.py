"""A Hugging Face hub on loopback that answers the calls huggingface_hub's client makes to
fetch a model, from real files laid out as in the real repositories.

What it does, and where the client (huggingface_hub 2.4) expects it:

- `GET /api/models/{repo}/tree/{revision}?recursive=...&expand=...`: the JSON listing that
  `HfApi.list_repo_tree` reads (`hf_api.py`, `RepoFile(**entry)`): `type`, `oid` (git's
  blob id), `size`, `path`, and for an LFS file `lfs: {oid: sha256, size, pointerSize}`;
  folders as `type: directory`. One page (the real hub pages at 1000 entries with a `Link`
  header, `utils/_pagination.py`; no repository here comes near).
- `HEAD /{repo}/resolve/{revision}/{path}`, which `get_hf_file_metadata` reads
  (`file_download.py`): `X-Repo-Commit` (the commit the revision names); a regular file
  answers 200 with `ETag` its blob id and `Content-Length`; an LFS file answers 302 to the
  storage host with `X-Linked-Etag` (its sha256) and `X-Linked-Size`, as the hub does, and
  the client, seeing another host, stops there (`_httpx2_follow_hub_redirects_with_backoff`
  in `utils/_http.py`) and downloads from `Location`. The storage host here is the same
  server under the name `localhost` (the hub's is `127.0.0.1`): another origin.
- `GET` of either, with `Range: bytes=N-` answered 206 and `Content-Range` (how `http_get`
  resumes a `.incomplete` file).
- A repository or file it lacks: 404 with `X-Error-Code: RepoNotFound` or
  `EntryNotFound`, which `hf_raise_for_status` (`utils/_http.py`) turns into its errors.

`stall(path, after)` holds a file's body after `after` bytes until `release()`, then sends
the rest: a download caught mid-file, for a test that kills the client there or looks at
a pull while it runs.
"""

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".bin", ".pt", ".nemo", ".safetensors", ".model")
"""What the repositories' .gitattributes send to LFS."""


@dataclass(frozen=True)
class Entry:
    source: Path
    size: int
    blob_id: str
    sha256: str | None

    def listing(self, path: str) -> dict:
        entry = {"type": "file", "oid": self.blob_id, "size": self.size, "path": path}
        if self.sha256:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return entry


def describe(source: Path, path: str) -> Entry:
    data = source.read_bytes()
    blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
    lfs = path.endswith(LFS_SUFFIXES)
    return Entry(source, len(data), blob, hashlib.sha256(data).hexdigest() if lfs else None)


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Entry]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Range
        self._stalls: dict[str, int] = {}
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def add(self, repo_id: str, files: dict[str, Path]) -> None:
        """A repository of `files` (path in the repository -> the real file)."""
        self.repos[repo_id] = {path: describe(src, path) for path, src in files.items()}
        self.commits[repo_id] = hashlib.sha1(repo_id.encode()).hexdigest()

    def stall(self, path: str, after: int) -> None:
        self._stalls[path] = after
        self._release.clear()

    def release(self) -> None:
        self._stalls.clear()
        self._release.set()

    def ranges(self, path: str) -> list[str | None]:
        """The Range headers of the GETs of every file whose path ends with `path`."""
        return [r for method, p, r in self.requests if method == "GET" and p.endswith(path)]

    @contextmanager
    def running(self) -> Iterator["FakeHub"]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release()
            self.server.shutdown()
            self.server.server_close()


_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/?]+)")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+)/(?P<path>.+)$")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # the test's output stays readable
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if (tree := _TREE.match(path)) and body:
                return self._tree(tree["repo"])
            if resolve := _RESOLVE.match(path):
                return self._resolve(resolve["repo"], resolve["path"], body)
            if cdn := _CDN.match(path):
                entry = hub.repos.get(cdn["repo"], {}).get(cdn["path"])
                if entry is None:
                    return self._missing("EntryNotFound")
                return self._file(entry, cdn["path"], body, {})
            self._missing("RepoNotFound")

        def _tree(self, repo: str) -> None:
            if repo not in hub.repos:
                return self._missing("RepoNotFound")
            files = hub.repos[repo]
            folders = sorted({p.rsplit("/", 1)[0] for p in files if "/" in p})
            listing = [
                {"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in folders
            ]
            listing += [entry.listing(p) for p, entry in sorted(files.items())]
            data = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _resolve(self, repo: str, path: str, body: bool) -> None:
            if repo not in hub.repos:
                return self._missing("RepoNotFound")
            entry = hub.repos[repo].get(path)
            if entry is None:
                return self._missing("EntryNotFound")
            headers = {"X-Repo-Commit": hub.commits[repo]}
            if entry.sha256 is None:
                headers["ETag"] = f'"{entry.blob_id}"'
                return self._file(entry, path, body, headers)
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{hub.port}/cdn/{repo}/{path}")
            self.send_header("X-Linked-Etag", f'"{entry.sha256}"')
            self.send_header("X-Linked-Size", str(entry.size))
            self.send_header("ETag", f'"{entry.blob_id}"')
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _file(self, entry: Entry, path: str, body: bool, headers: dict[str, str]) -> None:
            start = 0
            if (asked := self.headers.get("Range")) and (m := re.match(r"bytes=(\d+)-$", asked)):
                start = int(m.group(1))
            self.send_response(206 if start else 200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(entry.size - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{entry.size - 1}/{entry.size}")
            self.end_headers()
            if not body:
                return
            stall = hub._stalls.get(path)
            with entry.source.open("rb") as source:
                source.seek(start)
                sent = start
                try:
                    while chunk := source.read(1 << 16):
                        if stall is not None and sent + len(chunk) > stall:
                            held = max(stall - sent, 0)
                            self.wfile.write(chunk[:held])
                            self.wfile.flush()
                            hub._release.wait()  # then the rest, to a client still there
                            chunk, sent, stall = chunk[held:], sent + held, None
                        self.wfile.write(chunk)
                        sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        def _missing(self, code: str) -> None:
            data = json.dumps({"error": f"{code}: not on this hub"}).encode()
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler

"""Talking to a live edge in tests: the envelope, transcription uploads, the slot key
in Redis, and what the edge process holds (open files, sockets, resident memory)."""

import asyncio
import contextlib
import json
import os
import select
import socket
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import redis.asyncio

from aistack_testing.processes import Service
from aistack_testing.redis_server import RedisServer

SLOT_KEY = "aistack:gpu-slot"
KINDS = {"network", "malformed", "overflow", "cancelled", "unknown"}


def envelope(body: bytes | str, kind: str | None = None) -> dict:
    """The error of an envelope body, checked for its shape (and its kind when given)."""
    error = json.loads(body)["error"]
    assert set(error) == {"kind", "provider", "message"}, error
    assert error["kind"] in KINDS and error["provider"] and error["message"], error
    assert kind is None or error["kind"] == kind, error
    return error


async def transcribe(
    url: str, audio: bytes, filename: str = "a.wav", **fields: str
) -> tuple[int, dict[str, str], bytes]:
    """POST `audio` to the edge's /v1/audio/transcriptions: status, headers, body."""
    form = aiohttp.FormData()
    form.add_field("file", audio, filename=filename)
    for name, value in fields.items():
        form.add_field(name, value)
    async with aiohttp.request("POST", url + "/v1/audio/transcriptions", data=form) as r:
        return r.status, dict(r.headers), await r.read()


async def trickle(
    audio: bytes,
    pieces: int,
    pause_s: float,
    last_after: asyncio.Event | None = None,
    boundary: str = "trickle",
    sent: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """A multipart body holding `audio` as its `file`, sent in `pieces` with pauses;
    its end only once `last_after` is set, when given. `sent`, when given, is set once
    every piece of the audio has been handed to the connection."""
    disposition = 'Content-Disposition: form-data; name="file"; filename="a.wav"'
    yield f"--{boundary}\r\n{disposition}\r\n\r\n".encode()
    step = -(-len(audio) // pieces)
    for start in range(0, len(audio), step):
        await asyncio.sleep(pause_s)
        yield audio[start : start + step]
    if sent is not None:
        sent.set()
    if last_after is not None:
        await last_after.wait()
    yield f"\r\n--{boundary}--\r\n".encode()


def trickle_headers(boundary: str = "trickle") -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def slot_holder(redis_url: str, key: str = SLOT_KEY) -> str | None:
    """Who holds the slot now, per its token in Redis."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        token = await client.get(key)
    finally:
        await client.aclose()
    return token.decode().partition(" ")[2] if token else None


async def until_held(redis_url: str, key: str = SLOT_KEY, limit_s: float = 60.0) -> str:
    """Wait until someone holds the slot; its holder."""
    deadline = time.monotonic() + limit_s
    while (holder := await slot_holder(redis_url, key)) is None:
        assert time.monotonic() < deadline, f"the slot was not taken within {limit_s} s"
        await asyncio.sleep(0.05)
    return holder


async def until_free(redis_url: str, key: str = SLOT_KEY, limit_s: float = 30.0) -> None:
    """Wait until nobody holds the slot. After an early end the slot is held until the
    backend's job has stopped: up to one window or step of its compute."""
    deadline = time.monotonic() + limit_s
    while (holder := await slot_holder(redis_url, key)) is not None:
        assert time.monotonic() < deadline, f"the slot was still held by {holder} after {limit_s} s"
        await asyncio.sleep(0.05)


def leases_lost(edge_url: str, capability: str = "asr") -> float:
    """The edge's count of `capability` leases lost while held (its /metrics)."""
    with urllib.request.urlopen(edge_url + "/metrics", timeout=10) as answer:
        metrics = answer.read().decode()
    line = f'aistack_slot_leases_lost_total{{capability="{capability}"}} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


def answer_to_head(url: str, head: bytes, timeout: float = 10.0) -> bytes:
    """Send only the head of a request (its request line and headers, which may promise a
    body) to the server at `url`, and return the first bytes of its answer: a server that
    waits for the body it was promised times out here."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        return sock.recv(65536)


@contextlib.contextmanager
def never_reading(
    url: str, path: str, body: bytes, content_type: str = "application/json"
) -> Iterator[socket.socket]:
    """A client that sends a POST and then reads nothing of the answer: its receive
    window is a few kB and its segments small (set before it connects), so that the
    server's side of the connection holds little (about 130 kB on Linux) before a write
    of the server's waits on it."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    try:
        sock.connect((host, int(port)))
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        yield sock
    finally:
        sock.close()


def form_body(fields: dict[str, str], wav: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body of `fields` and `wav` as the file: body, content type
    (for `never_reading`, which sends raw bytes)."""
    boundary = os.urandom(8).hex()
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    )
    body = "".join(parts).encode() + wav + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def cut_off(sock: socket.socket, limit_s: float = 60.0) -> bytes:
    """Wait, reading nothing, until the server cuts `sock` (within `limit_s`); then what
    it had received."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    deadline = time.monotonic() + limit_s
    while not poller.poll(100):
        assert time.monotonic() < deadline, f"the server kept the connection {limit_s} s"
    sock.settimeout(10)
    received = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while data := sock.recv(1 << 16):
            received += data
    return bytes(received)


def open_fds(pid: int) -> int:
    """How many file descriptors process `pid` has open."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


LISTEN, TIME_WAIT = "0A", "06"  # the kernel's codes for TCP states in /proc/net/tcp


def tcp_sockets(port: int) -> list[tuple[str, str]]:
    """(state code, local address) of every TCP socket on this host whose local port is
    `port`, from /proc/net/tcp and tcp6."""
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                # /proc writes each 32-bit word in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((state, socket.inet_ntop(family, words)))
    return found


def accepted_connections(port: int) -> int:
    """How many connections a server on `port` has accepted and not yet closed."""
    return sum(state not in (LISTEN, TIME_WAIT) for state, _ in tcp_sockets(port))


def rss_kib(pid: int) -> int:
    """The resident memory of process `pid`, in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for process {pid}")


def asr_edge_env(whisper: Service, redis_server: RedisServer, **extra: str) -> dict[str, str]:
    """An edge's settings in front of asr-whisper on `redis_server`; `extra` as
    AISTACK_<NAME> variables."""
    env = {
        "AISTACK_ASR_BACKENDS": whisper.url,
        "AISTACK_REDIS_URL": redis_server.url,
        "AISTACK_PROBE_TIMEOUT_S": "5",
    }
    return env | {f"AISTACK_{name.upper()}": value for name, value in extra.items()}

"""What one hostile request costs the edge's memory, measured on the edge process itself
(its peak resident memory, /proc/<pid>/status VmHWM, reset before each case), while
`/health` is asked every 50 ms throughout: a gzip bomb to chat, a deeply nested JSON
body, a form of many parts with large names, a 50 MB upload (random bytes: a real
asr-whisper refuses them as undecodable), a form with a 90 MB field (plain and gzip), a
chat naming a 2 MB model; then twenty such clients at once; and what runs of them leave
behind once answered.

Run with `-s` for the figures (docs/reliability.md keeps one run's)."""

import asyncio
import contextlib
import json
import os
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from aistack_testing.edge import asr_edge_env, envelope
from aistack_testing.memory import reset_peak, status_kib

MiB = 2**20
ONE_REQUEST_MIB = 64
TWENTY_CLIENTS_MIB = 64
UPLOAD = os.urandom(50 * MiB)


@pytest.fixture
def edge(services, whisper, llm, redis_server):
    """A fresh edge for each case: what an earlier case left resident would hide what
    this one costs. Uploads wait in line (up to 20) rather than be refused as busy: the
    line holds them, which is what twenty at once must not multiply."""
    env = asr_edge_env(
        whisper, redis_server, slot_key="aistack:test-memory", slot_wait_s="300",
        slot_wait_max="20", llm_upstreams=llm.url,
    )  # fmt: skip
    return services.start("aistack_edge", env=env)


def open_files(pid: int) -> set[str]:
    """What process `pid` has open that is a file (not a socket, pipe or such): a
    spooled upload shows as its temporary directory's `#<inode> (deleted)`."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(fd)
            if target.startswith("/"):
                found.add(target)
    return found


async def settled_files(pid: int, within: float = 30.0) -> set[str]:
    """What `pid` has open once no spooled upload is, or what it still has after
    `within` seconds. An answer can come before its upload's file is closed: aiohttp
    closes a file it sent off the event loop, after the backend has answered."""
    deadline = time.monotonic() + within
    while True:
        found = open_files(pid)
        if not any(f.endswith(" (deleted)") for f in found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def _gzip_bomb() -> bytes:
    """1 GB of `{},` once inflated, about 1 MB on the wire."""
    packer = zlib.compressobj(6, wbits=31)
    packed = [packer.compress(b'{"model": "smollm2", "messages": [')]
    block = b"{}," * (MiB // 3)
    packed += [packer.compress(block) for _ in range(1024)]
    return b"".join([*packed, packer.compress(b"{}]}"), packer.flush()])


GZIP_BOMB = _gzip_bomb()


def multipart(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, value in parts
    )
    return body + f"--{boundary}--\r\n".encode()


Case = Callable[[aiohttp.ClientSession, str], Awaitable[tuple[int, bytes]]]


async def _post(session, url, data, headers) -> tuple[int, bytes]:
    async with session.post(url, data=data, headers=headers) as r:
        return r.status, await r.read()


async def bomb_to_chat(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with contextlib.suppress(aiohttp.ClientOSError):  # refused before all of it is sent
        return await _post(session, url + "/v1/chat/completions", GZIP_BOMB, headers)
    raise AssertionError("the edge dropped the connection without an answer")


async def nested_json(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    depth = MiB - 64  # 2 MB of brackets: within the JSON limit, past any parser's depth
    body = b'{"model": "smollm2", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    return await _post(
        session, url + "/v1/chat/completions", body, {"Content-Type": "application/json"}
    )


async def many_large_names(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    """Parts named with 8000 bytes each (aiohttp's bound on one header line), 40 MB of
    them: each name was kept, none counted."""
    parts = [("n" * 7990 + f"{i:08d}", b"") for i in range(5000)] + [("file", b"RIFF")]
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    body = multipart(parts, "b0undary")
    return await _post(session, url + "/v1/audio/transcriptions", body, headers)


async def upload_50_mb(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    form = aiohttp.FormData()
    form.add_field("file", UPLOAD, filename="noise.wav")
    async with session.post(url + "/v1/audio/transcriptions", data=form) as r:
        return r.status, await r.read()


def _huge_model_form(boundary: str) -> bytes:
    """A form whose `model` is 90 MB: a field is held in memory, and its value was
    quoted whole in the error (and the error kept in a cache)."""
    return multipart([("model", b"m" * (90 * MiB)), ("file", b"RIFF")], boundary)


HUGE_FIELD_FORM = _huge_model_form("b0undary")
HUGE_FIELD_GZIP = zlib.compress(HUGE_FIELD_FORM, 6, wbits=31)  # about 90 kB


async def huge_field(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    with contextlib.suppress(aiohttp.ClientOSError):  # refused before all of it is sent
        return await _post(session, url + "/v1/audio/transcriptions", HUGE_FIELD_FORM, headers)
    raise AssertionError("the edge dropped the connection without an answer")


async def huge_field_gzip(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    headers = {
        "Content-Type": "multipart/form-data; boundary=b0undary",
        "Content-Encoding": "gzip",
    }
    return await _post(session, url + "/v1/audio/transcriptions", HUGE_FIELD_GZIP, headers)


async def huge_chat_model(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    """A chat whose `model` (an unknown one) is most of the 2 MB JSON limit, different
    each time: each unknown name was quoted whole, and the envelope kept in a cache."""
    name = os.urandom(8).hex() + "m" * (2 * MiB - 1024)
    body = json.dumps({"model": name, "messages": [{"role": "user", "content": "Hi"}]})
    headers = {"Content-Type": "application/json"}
    return await _post(session, url + "/v1/chat/completions", body.encode(), headers)


CASES: dict[str, tuple[Case, int]] = {
    "gzip bomb to chat": (bomb_to_chat, 413),
    "deeply nested JSON": (nested_json, 400),
    "many large part names": (many_large_names, 400),
    "50 MB upload": (upload_50_mb, 400),
}
ONE_BY_ONE: dict[str, tuple[Case, int]] = {
    **CASES,
    "90 MB form field": (huge_field, 413),
    "90 MB form field, gzip": (huge_field_gzip, 413),
    "2 MB chat model name": (huge_chat_model, 400),
}
KEPT_MIB = 32
"""What a run of hostile requests may leave the edge larger by, once they are answered
(the allocator keeps some of what it freed)."""


async def measured(edge, clients: list[Case]) -> tuple[float, float, list[tuple[int, bytes]]]:
    """Run `clients` at once against the edge: its peak memory growth (MiB), the
    slowest `/health` meanwhile (s), and each client's status and body."""
    pid = edge.proc.pid
    gc_settle = 0.2
    await asyncio.sleep(gc_settle)
    reset_peak(pid)
    before = status_kib(pid, "VmRSS")
    done = asyncio.Event()
    slowest = 0.0

    health_timeout = aiohttp.ClientTimeout(total=5)

    async def ask_health(session: aiohttp.ClientSession) -> None:
        nonlocal slowest
        while not done.is_set():
            began = time.perf_counter()
            async with session.get(edge.url + "/health", timeout=health_timeout) as r:
                assert r.status == 200
            slowest = max(slowest, time.perf_counter() - began)
            await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session, aiohttp.ClientSession() as health:
        watcher = asyncio.create_task(ask_health(health))
        try:
            answers = await asyncio.gather(*(client(session, edge.url) for client in clients))
        finally:
            done.set()
            await watcher
    return (status_kib(pid, "VmHWM") - before) / 1024, slowest, answers


async def warm_up(edge) -> None:
    """A small one of each kind first: what the first request of a kind loads (imports,
    buffers) belongs to the process, not to the request. Small: what a hostile one
    leaves behind would hide what the next one costs."""
    chat, deflate = {"Content-Type": "application/json"}, {"Content-Encoding": "deflate"}
    form = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    small_upload = aiohttp.FormData()
    small_upload.add_field("file", os.urandom(2 * MiB), filename="noise.wav")
    async with aiohttp.ClientSession() as session:
        for path, body, headers in [
            (
                "/v1/chat/completions",
                zlib.compress(b"[" * 5000),
                {**chat, **deflate},
            ),
            ("/v1/audio/transcriptions", multipart([("n", b"")] * 70, "b0undary"), form),
            ("/v1/audio/transcriptions", small_upload, {}),
        ]:
            async with session.post(edge.url + path, data=body, headers=headers) as r:
                assert r.status in (400, 503), await r.text()


@pytest.mark.parametrize("name", list(ONE_BY_ONE))
async def test_one_hostile_request_costs_at_most_64_mib(edge, name):
    await warm_up(edge)
    case, status = ONE_BY_ONE[name]
    files = await settled_files(edge.proc.pid)
    grown, slowest, [(got, body)] = await measured(edge, [case])
    print(f"\n{name}: {got}, peak +{grown:.1f} MiB, /health within {slowest * 1000:.0f} ms")
    assert got == status, body[:300]
    envelope(body)
    assert grown <= ONE_REQUEST_MIB
    assert slowest < 1.0
    assert await settled_files(edge.proc.pid) == files  # no upload's file left open


async def test_twenty_hostile_clients_at_once(edge):
    await warm_up(edge)
    clients = [case for case, _ in CASES.values()] * 5
    files = await settled_files(edge.proc.pid)
    grown, slowest, answers = await measured(edge, clients)
    statuses = sorted(status for status, _ in answers)
    print(f"\ntwenty at once: {statuses}, peak +{grown:.1f} MiB, /health {slowest * 1000:.0f} ms")
    for (status, body), (_, expected) in zip(answers, list(CASES.values()) * 5, strict=True):
        assert status == expected, body[:300]
        envelope(body)
    assert grown <= TWENTY_CLIENTS_MIB
    assert slowest < 2.0
    assert await settled_files(edge.proc.pid) == files


@pytest.mark.parametrize(
    ("name", "times"),
    [("90 MB form field", 4), ("90 MB form field, gzip", 4), ("2 MB chat model name", 40)],
)
async def test_hostile_requests_leave_nothing_behind(edge, name, times):
    """One after another, each answered: the edge's resident memory is back within
    KEPT_MIB of where it was (nothing a client sent is kept, in a cache or elsewhere)."""
    await warm_up(edge)
    case, status = ONE_BY_ONE[name]
    pid = edge.proc.pid
    async with aiohttp.ClientSession() as session:
        got, body = await case(session, edge.url)  # the first of a kind loads what it needs
        assert got == status, body[:300]
        before = status_kib(pid, "VmRSS")
        longest = 0
        for _ in range(times):
            got, body = await case(session, edge.url)
            assert got == status, body[:300]
            longest = max(longest, len(envelope(body)["message"]))
    kept = (status_kib(pid, "VmRSS") - before) / 1024
    print(f"\n{name} x{times}: +{kept:.1f} MiB resident after")
    assert kept <= KEPT_MIB
    assert longest < 1000  # what the client sent is quoted in part only

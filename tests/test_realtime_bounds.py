"""What one realtime client may cost the edge (a real edge process): sessions bounded per
client and in total (refused with an `error` event and close 1013), event JSON bounded in
shape before it is parsed, and a burst of hostile 15 MiB messages that leaves /health
answering and the GPU slot's lease renewed while a transcription holds it.

Run with `-s` for the figures."""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from aistack_testing.edge import asr_edge_env, leases_lost, transcribe, until_held

MiB = 2**20
TTL_MS = 3000
HOSTILE = 30
HEALTH_WATCHER = """
import sys, threading, time, httpx
stop, slowest = threading.Event(), 0.0
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
with httpx.Client(timeout=30) as client:
    while not stop.is_set():
        began = time.perf_counter()
        assert client.get(sys.argv[1] + "/health").status_code == 200
        slowest = max(slowest, time.perf_counter() - began)
        time.sleep(0.02)
print(slowest)
"""


def realtime_url(edge) -> str:
    return edge.url.replace("http:", "ws:") + "/v1/realtime?intent=transcription"


async def first_event(ws: aiohttp.ClientWebSocketResponse) -> dict:
    message = await ws.receive(timeout=30)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


@pytest.fixture(scope="module")
def edge(module_services):
    env = {"AISTACK_REALTIME_MAX_SESSIONS": "3", "AISTACK_REALTIME_MAX_SESSIONS_PER_CLIENT": "2"}
    return module_services.start("aistack_edge", env=env)


def from_address(address: str) -> aiohttp.ClientSession:
    """A client session whose connections come from `address` (a loopback one)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def test_sessions_are_bounded_per_client_and_in_total(edge):
    url = realtime_url(edge)
    async with contextlib.AsyncExitStack() as stack:
        one, two, three = [
            await stack.enter_async_context(from_address(a))
            for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3")
        ]
        held = [await stack.enter_async_context(one.ws_connect(url)) for _ in range(2)]
        for ws in held:
            assert (await first_event(ws))["type"] == "session.created"
        refused = await stack.enter_async_context(one.ws_connect(url))
        error = await first_event(refused)
        assert error["type"] == "error", error
        assert "AISTACK_REALTIME_MAX_SESSIONS_PER_CLIENT" in error["error"]["message"]
        assert (await refused.receive(timeout=30)).type == aiohttp.WSMsgType.CLOSE
        assert refused.close_code == 1013

        other = await stack.enter_async_context(two.ws_connect(url))
        assert (await first_event(other))["type"] == "session.created"  # 3 open: the most
        over = await stack.enter_async_context(three.ws_connect(url))
        error = await first_event(over)
        assert "AISTACK_REALTIME_MAX_SESSIONS)" in error["error"]["message"], error
        assert (await over.receive(timeout=30)).type == aiohttp.WSMsgType.CLOSE
        assert over.close_code == 1013

        await held[0].close()  # one closed: a place again, for anyone
        deadline = time.monotonic() + 30
        while True:
            async with three.ws_connect(url) as again:
                if (await first_event(again))["type"] == "session.created":
                    break
            assert time.monotonic() < deadline, "the closed session's place never came back"
            await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    "message",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"type": "session.update", "x": [' + "[]," * 100_000 + "[]]}",
        '{"type": "session.update", "x": [' + "1," * 100_000 + "1]}",
    ],
    ids=["nested", "wide arrays", "wide values"],
)
async def test_hostile_json_is_refused_unparsed_and_the_session_goes_on(edge, message):
    async with aiohttp.ClientSession() as session, session.ws_connect(realtime_url(edge)) as ws:
        assert (await first_event(ws))["type"] == "session.created"
        await ws.send_str(message)
        error = await first_event(ws)
        assert error["type"] == "error" and error["error"]["code"] == "malformed", error
        await ws.send_str(json.dumps({"type": "input_audio_buffer.clear"}))
        assert (await first_event(ws))["type"] == "input_audio_buffer.cleared"


async def test_an_append_of_15_mib_fits_and_a_larger_message_ends_the_session(edge):
    """OpenAI's limit: an append carries at most 15 MiB of base64 audio."""
    async with aiohttp.ClientSession() as session, session.ws_connect(realtime_url(edge)) as ws:
        assert (await first_event(ws))["type"] == "session.created"
        largest = {"type": "input_audio_buffer.append", "audio": "AAAA" * (15 * MiB // 4)}
        await ws.send_str(json.dumps(largest))
        await ws.send_str(json.dumps({"type": "input_audio_buffer.clear"}))
        assert (await first_event(ws))["type"] == "input_audio_buffer.cleared"

        larger = {"type": "input_audio_buffer.append", "audio": "AAAA" * (16 * MiB // 4)}
        with contextlib.suppress(ConnectionError):  # the edge may close while it is sent
            await ws.send_str(json.dumps(larger))
        while (await ws.receive(timeout=60)).type not in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        ):
            pass
        assert ws.closed
        assert ws.close_code in (1009, 1006)  # too big (1006: reset while it was sent)


def hostile(n: int) -> str:
    """About 15 MiB of JSON that costs a parser many times its size."""
    if n % 2:
        return "[" * (15 * MiB // 2) + "]" * (15 * MiB // 2)
    return '{"type": "session.update", "x": [' + "[]," * (5 * MiB) + "[]]}"


async def test_a_hostile_burst_leaves_health_answering_and_the_lease_renewed(
    services, whisper, redis_server, long_wav
):
    env = asr_edge_env(
        whisper, redis_server, slot_key="aistack:test-realtime-bounds", slot_ttl_ms=str(TTL_MS)
    )
    edge = services.start("aistack_edge", env=env)
    lost_before = leases_lost(edge.url)
    holder = asyncio.create_task(transcribe(edge.url, long_wav.read_bytes()))
    try:
        await until_held(redis_server.url, "aistack:test-realtime-bounds", limit_s=120)

        async def send(session: aiohttp.ClientSession, messages: list[str]) -> None:
            async with session.ws_connect(realtime_url(edge), max_msg_size=0) as ws:
                assert (await first_event(ws))["type"] == "session.created"
                for message in messages:
                    await ws.send_str(message)
                for _ in messages:
                    assert (await first_event(ws))["type"] == "error"

        messages = [hostile(n) for n in range(HOSTILE)]
        sockets = 3  # within the per-client bound
        # /health is asked from a process of its own: this one's loop is busy sending.
        watcher = subprocess.Popen(
            [sys.executable, "-c", HEALTH_WATCHER, edge.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        async with aiohttp.ClientSession() as session:
            began, (ran, waited) = time.perf_counter(), scheduled_ms(edge.proc.pid)
            try:
                await asyncio.gather(*(send(session, messages[i::sockets]) for i in range(sockets)))
            finally:
                out, _ = watcher.communicate("", timeout=60)  # its stdin closed: it stops
            took = time.perf_counter() - began
            ran_after, waited_after = scheduled_ms(edge.proc.pid)
        slowest = float(out)
        print(
            f"\n{HOSTILE} hostile 15 MiB messages in {took:.1f} s: "
            f"/health within {slowest * 1000:.0f} ms; the edge's event loop ran "
            f"{ran_after - ran:.0f} ms and waited {waited_after - waited:.0f} ms for a CPU; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        assert not holder.done(), "the transcription ended during the burst"
        assert leases_lost(edge.url) == lost_before  # renewed throughout (TTL 3 s)
        assert slowest < 2.0  # a margin for a loaded machine: see the figure printed
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder


def scheduled_ms(pid: int) -> tuple[float, float]:
    """How long the main thread of process `pid` (the edge's event loop) has run on a CPU,
    and how long it has waited, ready, for one: the kernel's schedstat, in ms. A slow
    /health with little waiting is the loop's own work; with much, a busy machine."""
    ran, waited, _slices = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(ran) / 1e6, int(waited) / 1e6

"""A soak: many concurrent clients send mixed ASR, TTS and LLM traffic (streamed or not,
some malformed, some hanging up) through one edge for about a minute. Afterwards the
edge holds no more file descriptors or memory than after a warm-up under the same
load (within a tolerance), the slot is free, and every error was the envelope."""

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from aistack_testing.edge import envelope, open_fds, rss_kib, slot_holder, until_free

CLIENTS = 12
WARM_UP_S = 10
SOAK_S = 50
KEY = "soak"
FD_TOLERANCE = CLIENTS  # connections pooled to backends vary with the moment
RSS_TOLERANCE_KIB = 40 * 1024

Outcome = tuple[str, str]  # (request kind, outcome: "200", "hung up", or an error kind)


@pytest.fixture(scope="module")
def soaked_edge(module_services, cpu_stack_env):
    env = {**cpu_stack_env, "AISTACK_SLOT_KEY": KEY, "AISTACK_SLOT_WAIT_S": "5"}
    return module_services.start("aistack_edge", env=env)


async def outcome_of(response: aiohttp.ClientResponse) -> str:
    """The status of a 2xx answer (an error event in a stream is its envelope's kind),
    else the kind of its envelope, which it must be ("busy" for the slot's 503)."""
    body = await response.read()
    if response.status >= 400:
        return kind_of(envelope(body))
    for line in body.splitlines():
        if line.startswith(b"data: {") and b'"error"' in line:
            error = json.loads(line[6:])["error"]  # ASR's and chat's error events alike
            return kind_of(envelope(json.dumps({"error": error})))
    return str(response.status)


def kind_of(error: dict) -> str:
    busy = error["kind"] == "network" and "slot is busy" in error["message"]
    return "busy" if busy else error["kind"]


def transcription(audio: bytes, stream: bool) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename="a.wav")
    form.add_field("stream", "true" if stream else "false")
    return form


def requests(audio: bytes) -> dict[str, Callable[[aiohttp.ClientSession, str], Awaitable]]:
    """The mix: name -> a call that sends one request and returns its response."""
    hello = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi."}]}
    speech = {"model": "piper", "voice": "alloy", "input": "Soak test.", "response_format": "wav"}
    return {
        "asr": lambda s, url: s.post(
            url + "/v1/audio/transcriptions", data=transcription(audio, False)
        ),
        "asr stream": lambda s, url: s.post(
            url + "/v1/audio/transcriptions", data=transcription(audio, True)
        ),
        "tts": lambda s, url: s.post(url + "/v1/audio/speech", json=speech),
        "llm": lambda s, url: s.post(url + "/v1/chat/completions", json=hello | {"max_tokens": 8}),
        "llm stream": lambda s, url: s.post(
            url + "/v1/chat/completions", json=hello | {"max_tokens": 8, "stream": True}
        ),
        "malformed": lambda s, url: s.post(url + "/v1/chat/completions", data=b"{oops"),
        "models": lambda s, url: s.get(url + "/v1/models"),
    }


async def client(url: str, audio: bytes, until: float, seed: int) -> list[Outcome]:
    """One client sending random requests of the mix until `until`; a tenth of them it
    abandons early (a hang-up at whatever stage the request has reached)."""
    rng = random.Random(seed)
    mix = requests(audio)
    outcomes: list[Outcome] = []
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            name = rng.choice(list(mix))
            hang_up_after = rng.uniform(0.05, 1.5) if rng.random() < 0.1 else None
            try:
                async with asyncio.timeout(hang_up_after):
                    async with mix[name](session, url) as response:
                        outcomes.append((name, await outcome_of(response)))
            except TimeoutError:
                outcomes.append((name, "hung up"))
    return outcomes


async def load(url: str, audio: bytes, seconds: float, seed: int) -> list[Outcome]:
    until = time.monotonic() + seconds
    runs = [client(url, audio, until, seed * 100 + n) for n in range(CLIENTS)]
    return [outcome for outcomes in await asyncio.gather(*runs) for outcome in outcomes]


async def test_soak(soaked_edge, speech_wav, redis_server):
    audio, pid = speech_wav.read_bytes(), soaked_edge.proc.pid
    await load(soaked_edge.url, audio, WARM_UP_S, seed=1)
    await until_free(redis_server.url, KEY, limit_s=30)
    fds, rss = open_fds(pid), rss_kib(pid)

    began = time.monotonic()
    outcomes = await load(soaked_edge.url, audio, SOAK_S, seed=2)
    await until_free(redis_server.url, KEY, limit_s=30)
    fds_after, rss_after = open_fds(pid), rss_kib(pid)

    by_outcome = Counter(outcome for _, outcome in outcomes)
    print(
        f"soak: {len(outcomes)} requests from {CLIENTS} clients in "
        f"{time.monotonic() - began:.0f} s; by kind {dict(Counter(n for n, _ in outcomes))}; "
        f"outcomes {dict(by_outcome)}; fds {fds} -> {fds_after}; "
        f"RSS {rss // 1024} -> {rss_after // 1024} MiB"
    )
    served = {name.split()[0] for name, outcome in outcomes if outcome == "200"}
    assert {"asr", "tts", "llm"} <= served  # the load was real, not all refusals
    assert set(by_outcome) <= {"200", "hung up", "busy", "malformed"}, by_outcome
    malformed = {name for name, outcome in outcomes if outcome == "malformed"}
    assert malformed <= {"malformed"}, "a well-formed request was refused as malformed"
    assert fds_after <= fds + FD_TOLERANCE
    assert rss_after <= rss + RSS_TOLERANCE_KIB
    assert await slot_holder(redis_server.url, KEY) is None
    async with aiohttp.request("GET", soaked_edge.url + "/health") as r:
        assert r.status == 200

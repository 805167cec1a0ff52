"""A client of the internal ASR protocol (/transcribe, /info, /evict) for the backends' tests."""

import asyncio
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from aistack_contract.events import BackendEvent, decode_backend_event


def form(model: str | None, audio: bytes | None, **options: Any) -> aiohttp.FormData:
    """POST /transcribe's body; `model=None` leaves the options part out, `audio=None` the file."""
    data = aiohttp.FormData()
    if model is not None:
        data.add_field("options", json.dumps({"model": model, **options}))
    if audio is not None:
        data.add_field("file", audio, filename="upload", content_type="application/octet-stream")
    return data


@dataclass(frozen=True)
class ModelClient:
    """What a test sends one model of a backend."""

    model: str

    def form(self, audio: bytes | None, **options: Any) -> aiohttp.FormData:
        """POST /transcribe's body; `model=None` leaves the options part out, `audio=None`
        the file."""
        return form(options.pop("model", self.model), audio, **options)

    async def events(self, url: str, audio: bytes, **options: Any) -> list[BackendEvent]:
        """POST /transcribe to the backend at `url`: the events of its 200 stream."""
        return await events(url, self.form(audio, **options))

    async def loaded(self, url: str) -> bool:
        """Whether the backend at `url` has the model in memory."""
        return await loaded(url, self.model)


async def timed_events(url: str, body: aiohttp.FormData) -> list[tuple[float, BackendEvent]]:
    """POST /transcribe: each event of the 200 NDJSON stream with the time it arrived."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/transcribe", data=body) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "application/x-ndjson"
        return [(time.monotonic(), decode_backend_event(line)) async for line in response.content]


async def events(url: str, body: aiohttp.FormData) -> list[BackendEvent]:
    """POST /transcribe: the events of the 200 NDJSON stream."""
    return [event for _, event in await timed_events(url, body)]


async def refused(url: str, body: aiohttp.FormData) -> tuple[int, dict]:
    """POST /transcribe expecting a refusal: its status and envelope."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/transcribe", data=body) as response,
    ):
        return response.status, await response.json()


async def get(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.json()


async def post(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.post(url) as response:
        assert response.status == 200
        return await response.json()


async def loaded(url: str, model: str) -> bool:
    """Whether /info says `model` is in memory."""
    cards = {card["id"]: card for card in (await get(f"{url}/info"))["data"]}
    return cards[model]["loaded"]


async def at_work(url: str) -> bool:
    """Whether the ASR backend at `url` has a transcription job running (its /status)."""
    return (await get(f"{url}/status"))["jobs"] > 0


async def idle(url: str) -> bool:
    """Whether the ASR backend at `url` has no transcription job running."""
    return not await at_work(url)


async def wait_until(predicate: Callable[[], Awaitable[bool]], within: float) -> float:
    """Poll `predicate` until true; the seconds it took (fails after `within`)."""
    started = time.monotonic()
    while not await predicate():
        assert time.monotonic() - started < within, f"not within {within} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def job_log(url: str) -> list[tuple[float, float]]:
    """The (start, end) of each job an ASR backend ran, wall clock from its /status; now
    for a job still running. (Blocking: the backend is another process.)"""
    with urllib.request.urlopen(f"{url}/status", timeout=10) as answer:
        jobs = json.load(answer)["job_log"]
    return [(job["started"], job["ended"] or time.time()) for job in jobs if job["started"]]

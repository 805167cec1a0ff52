"""The internal ASR protocol's contract, one suite for every engine: what the shell
promises (docs/asr-backends.md), checked on a real service process of each.

An engine's tests run it by importing the tests and giving the `asr_engine` fixture:

    # services/asr-foo/tests/test_contract.py
    from aistack_testing.asr_contract import *  # noqa: F403

    # services/asr-foo/tests/conftest.py
    @pytest.fixture(scope="session")
    def asr_engine(foo, foo_strict, speech, long_speech) -> Engine: ...

Its own tests then keep only what is its engine's: the words, the windows or chunks,
the languages, how soon a cancel takes.
"""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from aistack_contract.events import (
    BackendDone,
    BackendError,
    BackendInfo,
    BackendSegment,
    decode_backend_event,
)
from aistack_testing.asr_protocol import ModelClient, get, post, refused, wait_until
from aistack_testing.audio import silence, transcode
from aistack_testing.processes import Service, start_edge

__all__ = [
    "Engine",
    "Transcription",
    "test_a_broken_multipart_body_is_malformed",
    "test_a_stopped_job_ends_its_stream_with_an_error",
    "test_a_transcription_is_info_segments_done",
    "test_an_idle_model_is_unloaded_after_the_keep_alive",
    "test_audio_over_the_cap_is_overflow",
    "test_bad_requests_are_malformed",
    "test_evict_drops_the_idle_model",
    "test_hanging_up_stops_the_work",
    "test_health_and_evict_answer_during_a_transcription",
    "test_info_lists_the_model",
    "test_the_request_id_is_passed_through",
    "test_translate_is_refused_where_the_model_cannot",
]

STOPS_WITHIN_S = 20.0
"""How soon the work of a cancelled job must end, at most, on every engine: a window or
a chunk of compute (each engine's own tests bound it closer)."""


@dataclass(frozen=True)
class Engine(ModelClient):
    """One engine's service processes, its model, and what the suite sends them."""

    service: Service
    """The engine's service, with the default keep-alive or a longer one."""
    strict: Service
    """The same engine with a keep-alive of `keep_alive` s and an audio cap of `cap_s` s."""
    provider: str
    speech: bytes
    """A few seconds of speech: at least one segment."""
    long_speech: bytes
    """Speech that takes the engine some seconds of work, within `service`'s cap."""
    keep_alive: float
    cap_s: float


@pytest.fixture(scope="session")
def edge(asr_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The edge in front of the engine's service alone (its GPU slot in-process): a
    fixture for an engine's own tests, imported into its conftest.py."""
    service = start_edge(asr_engine.service.url, tmp_path_factory.mktemp("edge") / "edge.log")
    yield service
    service.stop()


class Transcription:
    """A transcription streaming on a connection the test can drop."""

    def __init__(self, engine: Engine, headers: dict[str, str] | None = None) -> None:
        self.engine, self.headers = engine, headers or {}

    async def __aenter__(self) -> "Transcription":
        self.session = aiohttp.ClientSession()
        body = self.engine.form(self.engine.long_speech)
        url = f"{self.engine.service.url}/transcribe"
        self.response = await self.session.post(url, data=body, headers=self.headers)
        assert self.response.status == 200
        return self

    async def next_event(self):
        return decode_backend_event(await self.response.content.readline())

    async def rest(self) -> list:
        return [decode_backend_event(line) async for line in self.response.content]

    async def hang_up(self) -> None:
        self.response.close()
        await self.session.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()


async def _idle(service: Service) -> bool:
    status = await get(f"{service.url}/status")
    return status["jobs"] == 0 and status["in_use"] == {}


async def test_info_lists_the_model(asr_engine: Engine) -> None:
    url = asr_engine.service.url
    assert await get(f"{url}/health") == {"status": "ok"}
    info = await get(f"{url}/info")
    assert info["object"] == "list"
    card = next(card for card in info["data"] if card["id"] == asr_engine.model)
    assert card["capabilities"] == ["asr"]
    assert card["provider"] == asr_engine.provider
    assert card["languages"] and isinstance(card["family"], str)
    assert isinstance(card["supports_streaming"], bool)
    assert isinstance(card["loaded"], bool)


async def test_a_transcription_is_info_segments_done(asr_engine: Engine) -> None:
    """One info event, the segments numbered from 0 in time order, one done event that
    says how long the audio was."""
    info, *segments, done = await asr_engine.events(asr_engine.service.url, asr_engine.speech)
    assert isinstance(info, BackendInfo) and isinstance(done, BackendDone)
    assert info.language and 1.0 < info.duration < 30.0
    assert done.duration == pytest.approx(info.duration, abs=0.05)
    assert segments and all(isinstance(e, BackendSegment) for e in segments)
    assert [e.segment.id for e in segments] == list(range(len(segments)))
    assert all(0 <= e.segment.start <= e.segment.end <= done.duration + 0.5 for e in segments)
    starts = [e.segment.start for e in segments]
    assert starts == sorted(starts)
    assert "".join(e.segment.text for e in segments).strip()


@pytest.mark.parametrize(
    ("audio", "options"),
    [
        pytest.param(b"\x00\x01garbage" * 500, {}, id="garbage"),
        pytest.param(b"", {}, id="empty"),
        pytest.param(None, {}, id="no-file"),
        pytest.param("speech", {"model": None}, id="no-options"),
        pytest.param("speech", {"model": "enormous-9b"}, id="unknown-model"),
        pytest.param("speech", {"temperature": "hot"}, id="bad-options"),
    ],
)
async def test_bad_requests_are_malformed(
    asr_engine: Engine, audio: bytes | str | None, options: dict
) -> None:
    data = asr_engine.speech if audio == "speech" else audio
    status, body = await refused(asr_engine.service.url, asr_engine.form(data, **options))
    assert status == 400
    assert body["error"]["kind"] == "malformed"
    assert body["error"]["provider"] == asr_engine.provider
    assert body["error"]["message"]


async def test_a_broken_multipart_body_is_malformed(asr_engine: Engine) -> None:
    body = b"--b\r\nno header colon\r\n\r\nabc\r\n--b--\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{asr_engine.service.url}/transcribe", data=body, headers=headers
        ) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]["kind"] == "malformed"


async def test_translate_is_refused_where_the_model_cannot(asr_engine: Engine) -> None:
    cards = (await get(f"{asr_engine.service.url}/info"))["data"]
    if next(c for c in cards if c["id"] == asr_engine.model)["supports_translate"]:
        pytest.skip(f"{asr_engine.model} translates")
    body = asr_engine.form(asr_engine.speech, translate=True)
    status, answer = await refused(asr_engine.service.url, body)
    assert (status, answer["error"]["kind"]) == (400, "malformed")
    assert "translate" in answer["error"]["message"]


async def test_audio_over_the_cap_is_overflow(asr_engine: Engine, tmp_path: Path) -> None:
    """Refused from what the container declares, before any decoding or inference."""
    wav = tmp_path / "silence.wav"
    wav.write_bytes(silence(asr_engine.cap_s + 5))
    audio = await asyncio.to_thread(lambda: transcode(wav, tmp_path / "s.flac").read_bytes())
    status, body = await refused(asr_engine.strict.url, asr_engine.form(audio))
    assert status == 413
    assert body["error"]["kind"] == "overflow"
    assert body["error"]["provider"] == asr_engine.provider


async def test_the_request_id_is_passed_through(asr_engine: Engine) -> None:
    service = asr_engine.service
    headers = {"X-Request-ID": "contract-request-42"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{service.url}/health", headers=headers) as response:
            assert response.headers["X-Request-ID"] == "contract-request-42"
        body = asr_engine.form(b"")
        async with session.post(f"{service.url}/transcribe", data=body) as response:
            assert len(response.headers["X-Request-ID"]) == 32  # made here

    async def logged() -> bool:
        return "contract-request-42" in service.output()

    await wait_until(logged, 2)


async def test_evict_drops_the_idle_model(asr_engine: Engine) -> None:
    url = asr_engine.service.url
    await asr_engine.events(url, asr_engine.speech)
    assert await asr_engine.loaded(asr_engine.service.url)
    assert await post(f"{url}/evict") == {"evicted": [asr_engine.model]}
    assert await post(f"{url}/evict") == {"evicted": []}
    assert not await asr_engine.loaded(asr_engine.service.url)
    assert (await get(f"{url}/status"))["loaded"] == []


async def test_an_idle_model_is_unloaded_after_the_keep_alive(asr_engine: Engine) -> None:
    strict = asr_engine.strict
    await asr_engine.events(strict.url, asr_engine.speech)
    # The model is released just before the answer ends: its idle time starts a little
    # before this, never after.
    answered = time.monotonic()
    assert await asr_engine.loaded(strict.url)

    async def unloaded() -> bool:
        return not await asr_engine.loaded(strict.url)

    await wait_until(unloaded, asr_engine.keep_alive + 10)
    idle = time.monotonic() - answered
    assert idle >= asr_engine.keep_alive - 0.2, f"unloaded after {idle:.2f} s idle"


async def test_hanging_up_stops_the_work(asr_engine: Engine) -> None:
    """The worker ends and lets go of the model, which stays loaded for the next."""
    async with Transcription(asr_engine) as job:
        assert isinstance(await job.next_event(), BackendInfo)
        assert (await get(f"{asr_engine.service.url}/status"))["jobs"] == 1
    await wait_until(lambda: _idle(asr_engine.service), STOPS_WITHIN_S)
    assert await asr_engine.loaded(asr_engine.service.url)


async def test_a_stopped_job_ends_its_stream_with_an_error(asr_engine: Engine) -> None:
    """DELETE /jobs/{id} answers once the work has stopped; what was sent is not taken for
    the whole transcription: the stream ends with an error, not done."""
    url = asr_engine.service.url
    async with Transcription(asr_engine, {"X-Request-ID": "contract-stop-1"}) as job:
        assert isinstance(await job.next_event(), BackendInfo)
        async with (
            aiohttp.ClientSession() as session,
            session.delete(f"{url}/jobs/contract-stop-1?wait={STOPS_WITHIN_S}") as answer,
        ):
            assert await answer.json() == {"job": "contract-stop-1", "running": False}
        *_, last = await job.rest()
    assert isinstance(last, BackendError), last
    assert last.error.kind == "network" and "cancelled" in last.error.message
    assert await _idle(asr_engine.service)


async def test_health_and_evict_answer_during_a_transcription(asr_engine: Engine) -> None:
    url = asr_engine.service.url
    async with Transcription(asr_engine) as job:
        assert isinstance(await job.next_event(), BackendInfo)
        assert (await get(f"{url}/status"))["in_use"] == {asr_engine.model: 1}
        for _ in range(5):
            started = time.monotonic()
            assert await get(f"{url}/health") == {"status": "ok"}
            assert time.monotonic() - started < 0.5
        assert await post(f"{url}/evict") == {"evicted": []}  # in use: never evicted
        assert await asr_engine.loaded(asr_engine.service.url)

"""asr-whisper end to end: a real process, real HTTP, the bundled tiny.en, Piper's speech."""

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aistack_contract.events import (
    BackendDone,
    BackendEvent,
    BackendInfo,
    BackendSegment,
    decode_backend_event,
)
from aistack_testing import asr_protocol
from aistack_testing.asr_protocol import get, refused, wait_until
from aistack_testing.audio import transcode
from aistack_testing.plugin import SENTENCE
from aistack_testing.processes import Service
from aistack_testing.speech import words_in_order

MODEL = "whisper-tiny.en"


def form(audio: bytes | None, **options: Any) -> aiohttp.FormData:
    """POST /transcribe's body for MODEL; `model=None` leaves the options part out."""
    return asr_protocol.form(options.pop("model", MODEL), audio, **options)


async def transcribe(url: str, audio: bytes, **options: Any) -> list[BackendEvent]:
    return await asr_protocol.events(url, form(audio, **options))


async def loaded(url: str) -> bool:
    return await asr_protocol.loaded(url, MODEL)


def text_of(events: list) -> str:
    return "".join(e.segment.text for e in events if isinstance(e, BackendSegment))


async def test_info_lists_the_bundled_model(whisper: Service) -> None:
    assert await get(f"{whisper.url}/health") == {"status": "ok"}
    info = await get(f"{whisper.url}/info")
    assert info["object"] == "list"
    card = next(card for card in info["data"] if card["id"] == MODEL)
    assert card["capabilities"] == ["asr"]
    assert card["languages"] == ["en"]
    assert card["supports_streaming"] is True
    assert card["supports_translate"] is False
    assert isinstance(card["loaded"], bool)


async def test_transcribes_speech_as_a_stream(whisper: Service, speech: bytes) -> None:
    events = await transcribe(whisper.url, speech)
    info, *segments, done = events
    assert isinstance(info, BackendInfo) and isinstance(done, BackendDone)
    assert info.language == "en"
    assert 4.0 < info.duration < 6.0
    assert segments and all(isinstance(e, BackendSegment) for e in segments)
    assert [e.segment.id for e in segments] == list(range(len(segments)))
    assert words_in_order(SENTENCE, text_of(events)) >= 0.6
    words = [w for e in segments for w in e.segment.words]
    assert len(words) >= 10
    assert all(0 <= w.start <= w.end <= info.duration + 0.5 for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))


@pytest.mark.parametrize("hint", ["en-US", "fr"])
async def test_a_hint_is_read_or_dropped_never_refused(
    whisper: Service, speech: bytes, hint: str
) -> None:
    events = await transcribe(whisper.url, speech, language=hint)
    assert events[0].language == "en"
    assert words_in_order(SENTENCE, text_of(events)) >= 0.6


@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".flac"])
async def test_transcribes_other_upload_formats(
    whisper: Service, speech_wav: Path, tmp_path: Path, suffix: str
) -> None:
    encoded = await asyncio.to_thread(transcode, speech_wav, tmp_path / f"speech{suffix}")
    audio = await asyncio.to_thread(encoded.read_bytes)
    events = await transcribe(whisper.url, audio)
    assert words_in_order(SENTENCE, text_of(events)) >= 0.6


async def test_the_prompt_reaches_the_model(whisper: Service, speech: bytes) -> None:
    """Whisper follows its prompt's style: after a prompt without punctuation, tiny.en
    writes fewer of the full stops it writes unprompted (none, mostly). Temperature 0
    both times: the fallback samples at random."""
    plain = text_of(await transcribe(whisper.url, speech, temperature=0.0))
    assert "." in plain, plain
    bare = "".join(c for c in SENTENCE.lower() if c.isalpha() or c == " ")
    prompted = text_of(await transcribe(whisper.url, speech, prompt=bare, temperature=0.0))
    assert prompted.count(".") < plain.count("."), (plain, prompted)
    assert words_in_order(SENTENCE, prompted) >= 0.6, prompted


async def test_the_temperature_reaches_the_model(whisper: Service, speech: bytes) -> None:
    """faster-whisper reports each segment's decoding temperature: unasked, its first
    (0); asked, the one given, since a single temperature leaves no fallback."""
    for asked, used in ((None, 0.0), (0.6, 0.6)):
        options = {} if asked is None else {"temperature": asked}
        events = await transcribe(whisper.url, speech, **options)
        segments = [e.segment for e in events if isinstance(e, BackendSegment)]
        assert segments and all(s.temperature == pytest.approx(used) for s in segments), asked


@pytest.mark.parametrize(
    ("audio", "options"),
    [
        pytest.param(b"\x00\x01garbage" * 500, {}, id="garbage"),
        pytest.param(b"", {}, id="empty"),
        pytest.param(None, {}, id="no-file"),
        pytest.param("speech", {"model": "whisper-enormous"}, id="unknown-model"),
        pytest.param("speech", {"translate": True}, id="translate-on-english-only"),
        pytest.param("speech", {"temperature": "hot"}, id="bad-options"),
    ],
)
async def test_bad_requests_are_malformed(
    whisper: Service, speech: bytes, audio: bytes | str | None, options: dict
) -> None:
    data = speech if audio == "speech" else audio
    status, body = await refused(whisper.url, form(data, **options))
    assert status == 400
    assert body["error"]["kind"] == "malformed"
    assert body["error"]["provider"] == "Faster-Whisper"
    assert body["error"]["message"]


async def test_missing_options_are_malformed(whisper: Service, speech: bytes) -> None:
    status, body = await refused(whisper.url, form(speech, model=None))
    assert (status, body["error"]["kind"]) == (400, "malformed")


async def test_audio_over_the_cap_is_overflow(whisper_strict: Service, long_speech: bytes) -> None:
    status, body = await refused(whisper_strict.url, form(long_speech))
    assert status == 413
    assert body["error"]["kind"] == "overflow"


async def test_a_broken_multipart_body_is_malformed(whisper: Service) -> None:
    body = b"--b\r\nno header colon\r\n\r\nabc\r\n--b--\r\n"
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{whisper.url}/transcribe", data=body, headers=headers) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]["kind"] == "malformed"


async def test_request_id_is_passed_through(whisper: Service) -> None:
    headers = {"X-Request-ID": "test-request-42"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{whisper.url}/health", headers=headers) as response:
            assert response.headers["X-Request-ID"] == "test-request-42"
        async with session.post(f"{whisper.url}/transcribe", data=form(b"")) as response:
            assert response.headers["X-Request-ID"]
    await wait_until(lambda: _logged(whisper, "test-request-42"), 2)


async def _logged(service: Service, text: str) -> bool:
    return text in service.output()


async def test_evict_drops_the_idle_model(whisper: Service, silence: bytes) -> None:
    assert (await transcribe(whisper.url, silence))[-1] == BackendDone(duration=1.0)
    assert await loaded(whisper.url)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{whisper.url}/evict") as response:
            assert await response.json() == {"evicted": [MODEL]}
        async with session.post(f"{whisper.url}/evict") as response:
            assert await response.json() == {"evicted": []}
    assert not await loaded(whisper.url)


async def test_idle_model_is_unloaded_after_the_keep_alive(
    whisper_strict: Service, silence: bytes, strict_keep_alive: float
) -> None:
    await transcribe(whisper_strict.url, silence)
    # The model is released just before the answer ends: its idle time starts a little
    # before this, never after.
    answered = time.monotonic()
    assert await loaded(whisper_strict.url)
    await wait_until(lambda: _unloaded(whisper_strict.url), strict_keep_alive + 5)
    idle = time.monotonic() - answered
    assert idle >= strict_keep_alive - 0.2, f"unloaded after {idle:.2f} s idle"


async def _unloaded(url: str) -> bool:
    return not await loaded(url)


class LongTranscription:
    """A long transcription streaming on a connection the test can drop."""

    def __init__(self, url: str, audio: bytes) -> None:
        self.url, self.audio = url, audio

    async def __aenter__(self) -> "LongTranscription":
        self.session = aiohttp.ClientSession()
        self.response = await self.session.post(f"{self.url}/transcribe", data=form(self.audio))
        assert self.response.status == 200
        return self

    async def next_event(self):
        return decode_backend_event(await self.response.content.readline())

    async def hang_up(self) -> None:
        self.response.close()
        await self.session.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()


async def status(url: str) -> dict:
    return await get(f"{url}/status")


async def test_hanging_up_cancels_the_work(whisper: Service, long_speech: bytes) -> None:
    async with LongTranscription(whisper.url, long_speech) as job:
        assert isinstance(await job.next_event(), BackendInfo)
        started = time.monotonic()
        assert isinstance(await job.next_event(), BackendSegment)
        window = time.monotonic() - started  # one 30 s window's decode, on this machine now
        assert (await status(whisper.url))["jobs"] == 1
        await job.hang_up()

        async def idle() -> bool:
            now = await status(whisper.url)
            return now["jobs"] == 0 and now["in_use"] == {}

        # The work stops at the next segment: at worst after the window being decoded.
        waited = await wait_until(idle, max(2.0, 1.5 * window))
        print(f"first window {window:.2f} s; worker ended {waited:.2f} s after hang-up")
    assert await loaded(whisper.url)  # released, not unloaded: the next request reuses it


async def test_health_and_evict_answer_during_a_transcription(
    whisper: Service, long_speech: bytes
) -> None:
    async with LongTranscription(whisper.url, long_speech) as job:
        assert isinstance(await job.next_event(), BackendInfo)
        assert (await status(whisper.url))["in_use"] == {MODEL: 1}
        for _ in range(5):
            started = time.monotonic()
            assert await get(f"{whisper.url}/health") == {"status": "ok"}
            assert time.monotonic() - started < 0.5
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{whisper.url}/evict") as response,
        ):
            assert await response.json() == {"evicted": []}  # in use: never evicted
        assert await loaded(whisper.url)

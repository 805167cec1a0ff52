"""asr-whisper end to end: a real process, real HTTP, the bundled tiny.en, Piper's speech."""

import asyncio
import contextlib
import itertools
import time
from pathlib import Path

import aiohttp
import pytest

from aistack_contract.events import (
    BackendDone,
    BackendInfo,
    BackendSegment,
)
from aistack_testing.asr_contract import Engine, Transcription
from aistack_testing.asr_protocol import ModelClient, get, wait_until
from aistack_testing.audio import transcode
from aistack_testing.plugin import SENTENCE
from aistack_testing.processes import Service, start_module
from aistack_testing.speech import words_in_order

WHISPER = ModelClient("whisper-tiny.en")


def text_of(events: list) -> str:
    return "".join(e.segment.text for e in events if isinstance(e, BackendSegment))


async def test_info_lists_the_bundled_model(whisper: Service) -> None:
    assert await get(f"{whisper.url}/health") == {"status": "ok"}
    info = await get(f"{whisper.url}/info")
    assert info["object"] == "list"
    card = next(card for card in info["data"] if card["id"] == WHISPER.model)
    assert card["capabilities"] == ["asr"]
    assert card["languages"] == ["en"]
    assert card["supports_streaming"] is True
    assert card["supports_translate"] is False
    assert isinstance(card["loaded"], bool)


async def test_transcribes_speech_as_a_stream(whisper: Service, speech: bytes) -> None:
    events = await WHISPER.events(whisper.url, speech)
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
    events = await WHISPER.events(whisper.url, speech, language=hint)
    assert events[0].language == "en"
    assert words_in_order(SENTENCE, text_of(events)) >= 0.6


@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".flac"])
async def test_transcribes_other_upload_formats(
    whisper: Service, speech_wav: Path, tmp_path: Path, suffix: str
) -> None:
    encoded = await asyncio.to_thread(transcode, speech_wav, tmp_path / f"speech{suffix}")
    audio = await asyncio.to_thread(encoded.read_bytes)
    events = await WHISPER.events(whisper.url, audio)
    assert words_in_order(SENTENCE, text_of(events)) >= 0.6


async def test_the_prompt_reaches_the_model(whisper: Service, speech: bytes) -> None:
    """Whisper follows its prompt's style: after a prompt without punctuation, tiny.en
    writes fewer of the full stops it writes unprompted (none, mostly). Temperature 0
    both times: the fallback samples at random."""
    plain = text_of(await WHISPER.events(whisper.url, speech, temperature=0.0))
    assert "." in plain, plain
    bare = "".join(c for c in SENTENCE.lower() if c.isalpha() or c == " ")
    prompted = text_of(await WHISPER.events(whisper.url, speech, prompt=bare, temperature=0.0))
    assert prompted.count(".") < plain.count("."), (plain, prompted)
    assert words_in_order(SENTENCE, prompted) >= 0.6, prompted


async def test_the_temperature_reaches_the_model(whisper: Service, speech: bytes) -> None:
    """faster-whisper reports each segment's decoding temperature: unasked, its first
    (0); asked, the one given, since a single temperature leaves no fallback."""
    for asked, used in ((None, 0.0), (0.6, 0.6)):
        options = {} if asked is None else {"temperature": asked}
        events = await WHISPER.events(whisper.url, speech, **options)
        segments = [e.segment for e in events if isinstance(e, BackendSegment)]
        assert segments and all(s.temperature == pytest.approx(used) for s in segments), asked


async def test_hanging_up_stops_at_the_next_segment(asr_engine: Engine) -> None:
    """The worker checks its cancel between segments: it ends within one 30 s window's
    decode of the hang-up (the contract suite allows any engine more)."""
    async with Transcription(asr_engine) as job:
        assert isinstance(await job.next_event(), BackendInfo)
        started = time.monotonic()
        assert isinstance(await job.next_event(), BackendSegment)
        window = time.monotonic() - started  # one 30 s window's decode, on this machine now

    async def idle() -> bool:
        now = await get(f"{asr_engine.service.url}/status")
        return now["jobs"] == 0 and now["in_use"] == {}

    waited = await wait_until(idle, max(2.0, 1.5 * window))
    print(f"first window {window:.2f} s; worker ended {waited:.2f} s after hang-up")


async def test_a_job_that_does_not_stop_after_its_cancel_exits_the_service(
    tmp_path: Path, long_speech: bytes
) -> None:
    """AISTACK_STOP_EXIT_S: a cancelled job still computing that long after `DELETE
    /jobs/{id}` makes the service exit (code 70) for its supervisor to restart it: the
    edge holds the GPU slot until then. A window of tiny.en takes far longer than the
    10 ms allowed here, so the cancel lands inside one."""
    service = start_module(
        "aistack_asr_whisper", tmp_path / "service.log", {"AISTACK_STOP_EXIT_S": "0.01"}
    )
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"X-Request-ID": "stuck-1"}
            async with session.post(
                f"{service.url}/transcribe", data=WHISPER.form(long_speech), headers=headers
            ) as response:
                assert response.status == 200
                await response.content.readline()  # info: the worker computes its windows
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.delete(f"{service.url}/jobs/stuck-1?wait=0"):
                        pass
        code = await asyncio.to_thread(service.proc.wait, 30)
        assert code == 70
        assert "has not stopped 0.01 s after its cancel: exiting" in service.output()
    finally:
        service.stop()

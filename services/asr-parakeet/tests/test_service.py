"""asr-parakeet end to end: real processes, real HTTP, a tiny model of the real architecture,
Piper's speech. The words are meaningless; everything around them is real."""

import asyncio
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aistack_asr_parakeet.chunks import plan_chunks
from aistack_asr_parakeet.models import LANGUAGES, MODEL_ID
from aistack_asr_parakeet.segments import MAX_SEGMENT_SEC
from aistack_contract.events import (
    BackendDone,
    BackendEvent,
    BackendInfo,
    BackendSegment,
    decode_backend_event,
)
from aistack_contract.transcription import Word
from aistack_testing import asr_protocol
from aistack_testing.asr_protocol import ModelClient, get, refused, wait_until
from aistack_testing.audio import repeat_wav, transcode
from aistack_testing.processes import Service

PARAKEET = ModelClient(MODEL_ID)


async def transcribe(url: str, audio: bytes, **options: Any) -> list[tuple[float, BackendEvent]]:
    """POST /transcribe: each event with the time it arrived."""
    return await asr_protocol.timed_events(url, PARAKEET.form(audio, **options))


def segments_of(events: list[BackendEvent]) -> list[BackendSegment]:
    return [e for e in events if isinstance(e, BackendSegment)]


def words_of(events: list[BackendEvent]) -> list[Word]:
    return [w for e in segments_of(events) for w in e.segment.words or []]


def check_shapes(events: list[BackendEvent]) -> list[Word]:
    """Info first, done last, segments in between: numbered, within the audio, each the
    span and text of its words, capped; word times never go back. The words."""
    info, *middle, done = events
    assert isinstance(info, BackendInfo) and isinstance(done, BackendDone)
    assert done.duration == pytest.approx(info.duration, abs=0.01)
    segments = [e.segment for e in middle]
    assert all(isinstance(e, BackendSegment) for e in middle)
    assert [s.id for s in segments] == list(range(len(segments)))
    for segment in segments:
        assert segment.words
        assert (segment.start, segment.end) == (segment.words[0].start, segment.words[-1].end)
        assert segment.text == " ".join(w.word for w in segment.words)
        assert segment.end - segment.start <= MAX_SEGMENT_SEC
    words = [w for s in segments for w in s.words or []]
    assert all(0 <= w.start <= w.end <= done.duration for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    return words


def windows_logged(service: Service) -> list[int]:
    return [int(n) for n in re.findall(r"words from (\d+) window", service.output())]


async def test_info_lists_parakeet_without_streaming_or_translate(parakeet: Service) -> None:
    assert await get(f"{parakeet.url}/health") == {"status": "ok"}
    info = await get(f"{parakeet.url}/info")
    (card,) = info["data"]
    assert card["id"] == "nvidia/parakeet-tdt-0.6b-v3"
    assert card["owned_by"] == "nvidia"
    assert card["capabilities"] == ["asr"]
    assert len(card["languages"]) == 25 and {"en", "de", "fr", "uk", "mt"} <= set(LANGUAGES)
    assert card["supports_streaming"] is False
    assert card["supports_translate"] is False
    assert isinstance(card["loaded"], bool)


async def test_short_speech_is_one_window(parakeet: Service, speech: bytes) -> None:
    events = await PARAKEET.events(parakeet.url, speech)
    words = check_shapes(events)
    info = events[0]
    assert info.language == "auto"  # no hint: Parakeet does not say what it detected
    assert 4.0 < info.duration < 6.0
    assert words, "random weights still emit words"
    assert windows_logged(parakeet)[-1] == 1


async def test_long_speech_is_windowed_stitched_and_sent_at_the_end(
    parakeet: Service, long_speech: bytes, long_form: dict[str, str]
) -> None:
    timed = await transcribe(parakeet.url, long_speech)
    events = [event for _, event in timed]
    words = check_shapes(events)
    duration = events[0].duration
    # the windows the service planned, from the same settings
    rate = 16_000
    seconds = {k.removeprefix("AISTACK_PARAKEET_"): float(v) for k, v in long_form.items()
               if k.endswith("_SEC")}  # fmt: skip
    windows = plan_chunks(
        round(duration * rate),
        window=round(seconds["WINDOW_SEC"] * rate),
        overlap=round(seconds["OVERLAP_SEC"] * rate),
        min_last=round(seconds["MIN_LAST_CHUNK_SEC"] * rate),
    )
    assert len(windows) >= 4
    assert windows_logged(parakeet)[-1] == len(windows)
    assert "encoder attention: local" in parakeet.output()  # 8 s windows > 6 s
    # words from every window made it through the stitching, to the end of the audio
    for window in windows:
        assert any(window.start / rate <= w.start < window.end / rate for w in words)
    assert words[-1].end > windows[-1].start / rate
    # not streamed: every segment arrives at once, after all the windows
    arrived = [t for t, e in timed if isinstance(e, BackendSegment)]
    info_at = timed[0][0]
    assert arrived[-1] - arrived[0] < (arrived[0] - info_at) / 2


@pytest.mark.parametrize(
    ("options", "language", "with_words"),
    [
        pytest.param({"language": "fr"}, "fr", True, id="hint"),
        pytest.param({"language": "pt-BR"}, "pt", True, id="regional-hint"),
        pytest.param({"language": "zh"}, "auto", True, id="hint-not-european-dropped"),
        pytest.param({"word_timestamps": False}, "auto", False, id="no-words"),
    ],
)
async def test_options(
    parakeet: Service, speech: bytes, options: dict, language: str, with_words: bool
) -> None:
    info, *middle, done = await PARAKEET.events(parakeet.url, speech, **options)
    assert info.language == language
    assert middle and isinstance(done, BackendDone)
    assert all(bool(e.segment.words) == with_words for e in middle)


@pytest.mark.parametrize("suffix", [".mp3", ".ogg"])
async def test_other_upload_formats(
    parakeet: Service, speech_wav: Path, tmp_path: Path, suffix: str
) -> None:
    encoded = await asyncio.to_thread(transcode, speech_wav, tmp_path / f"speech{suffix}")
    events = await PARAKEET.events(parakeet.url, await asyncio.to_thread(encoded.read_bytes))
    assert 4.0 < events[0].duration < 6.0
    check_shapes(events)


async def test_hanging_up_stops_at_the_next_window(
    parakeet: Service, speech_wav: Path, tmp_path: Path, speech: bytes
) -> None:
    audio = repeat_wav(speech_wav, tmp_path / "minute.wav", 100).read_bytes()  # 16 windows
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{parakeet.url}/transcribe", data=PARAKEET.form(audio)) as response,
    ):
        assert response.status == 200
        assert isinstance(decode_backend_event(await response.content.readline()), BackendInfo)
        assert (await get(f"{parakeet.url}/status"))["jobs"] == 1
    # hung up: the worker stops before its next window, and lets go of the model

    async def idle() -> bool:
        now = await get(f"{parakeet.url}/status")
        return now["jobs"] == 0 and now["in_use"] == {}

    await wait_until(idle, 20)
    stopped = re.findall(
        r"cancelled (?:before|in) window (\d+), at ([\d.]+) s of ([\d.]+) s", parakeet.output()
    )
    assert stopped, parakeet.output()[-2000:]
    window, at, of = stopped[-1]
    assert int(window) >= 1 and float(at) < float(of) - 10  # windows were left undone
    check_shapes(await PARAKEET.events(parakeet.url, speech))  # and the service goes on


async def test_without_a_model_file_no_model_is_served(
    start_parakeet: Callable[[Path, dict[str, str]], Service], tmp_path: Path, speech: bytes
) -> None:
    service = start_parakeet(
        tmp_path / "service.log", {"AISTACK_PARAKEET_MODEL_PATH": str(tmp_path / "absent")}
    )
    assert (await get(f"{service.url}/info"))["data"] == []
    status, body = await refused(service.url, PARAKEET.form(speech))
    assert status == 400
    assert body["error"] == {
        "kind": "malformed",
        "provider": "Parakeet",
        "message": f"unknown model {MODEL_ID!r}",
    }

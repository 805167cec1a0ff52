"""asr-sensevoice end to end: a real process, real HTTP, the tiny models, Piper's speech."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import numpy as np
import pytest

from aistack_asr.audio import SAMPLE_RATE, Audio, decode_audio
from aistack_asr_sensevoice import engine
from aistack_asr_sensevoice.settings import SenseVoiceSettings
from aistack_contract.events import (
    BackendDone,
    BackendInfo,
    BackendSegment,
    decode_backend_event,
)
from aistack_testing.asr_protocol import ModelClient, get, refused, wait_until
from aistack_testing.audio import silence
from aistack_testing.processes import Service, start_module

if TYPE_CHECKING:
    from conftest import Speech, TinyModels

MODEL = "iic/SenseVoiceSmall"
SENSEVOICE = ModelClient(MODEL)
FIRST_LOAD_S = 120  # the first request imports FunASR and torch: tens of seconds on two cores


def segments_of(events: list) -> list:
    return [e.segment for e in events if isinstance(e, BackendSegment)]


def vad_spans(tiny_models: TinyModels, audio: bytes) -> list[tuple[float, float]]:
    """What the same VAD finds in the same audio, run here in-process."""
    settings = SenseVoiceSettings(
        sensevoice_model_dir=tiny_models.model_dir, sensevoice_vad_dir=tiny_models.vad_dir
    )
    pair = engine.load(settings)
    try:
        blocks = Audio.open(io.BytesIO(audio), "test").blocks(engine.VAD_WINDOW_S)
        return [(start, end) for start, end, _ in engine.speech_spans(pair, blocks)]
    finally:
        engine.unload(pair)


def test_a_long_recording_is_read_block_by_block(
    long_speech: Speech, tiny_models: TinyModels
) -> None:
    """Five minutes through the VAD a block at a time: spans in order, and each span's
    samples are the recording's at that span, though the reader holds only what an open
    span may still need."""
    settings = SenseVoiceSettings(
        sensevoice_model_dir=tiny_models.model_dir, sensevoice_vad_dir=tiny_models.vad_dir
    )
    whole = decode_audio(long_speech.data, "test")
    pair = engine.load(settings)
    try:
        blocks = Audio.open(io.BytesIO(long_speech.data), "test").blocks(engine.VAD_WINDOW_S)
        spans = list(engine.speech_spans(pair, blocks))
    finally:
        engine.unload(pair)
    assert spans[-1][1] > 4 * engine.VAD_WINDOW_S  # beyond the fourth block
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    for start, end, samples in spans:
        first = round(start * 1000) * SAMPLE_RATE // 1000
        assert np.array_equal(samples, whole[first : first + samples.size])
        assert samples.size == pytest.approx((end - start) * SAMPLE_RATE, abs=16)


async def test_info_shows_the_card(sensevoice: Service) -> None:
    assert await get(f"{sensevoice.url}/health") == {"status": "ok"}
    (card,) = (await get(f"{sensevoice.url}/info"))["data"]
    assert card["id"] == MODEL
    assert card["capabilities"] == ["asr"]
    assert card["languages"] == ["zh", "yue", "en", "ja", "ko"]
    assert card["supports_streaming"] is True
    assert card["supports_translate"] is False


async def test_one_segment_per_vad_chunk(
    sensevoice: Service, speech: Speech, tiny_models: TinyModels
) -> None:
    events = await SENSEVOICE.events(sensevoice.url, speech.data, language="auto")
    info, *middle, done = events
    assert isinstance(info, BackendInfo)
    assert info.duration == pytest.approx(speech.duration, abs=0.01)
    assert info.language in {"zh", "yue", "en", "ja", "ko", "unknown"}
    assert isinstance(done, BackendDone)
    segments = segments_of(middle)
    assert len(segments) == len(middle)
    assert [(s.start, s.end) for s in segments] == vad_spans(tiny_models, speech.data)
    assert [s.id for s in segments] == list(range(len(segments)))
    # every chunk lies within one sentence, and every sentence has its chunk
    owners = [
        [i for i, (a, b) in enumerate(speech.spoken) if s.start < b and a < s.end] for s in segments
    ]
    assert all(len(owner) == 1 for owner in owners), owners
    assert sorted({owner[0] for owner in owners}) == list(range(len(speech.spoken)))


async def test_segments_and_words_are_clean_and_in_order(
    sensevoice: Service, speech: Speech
) -> None:
    segments = segments_of(await SENSEVOICE.events(sensevoice.url, speech.data, language="en"))
    assert segments
    previous_end = 0.0
    for segment in segments:
        assert previous_end <= segment.start < segment.end <= speech.duration
        previous_end = segment.end
        assert segment.text == segment.text.strip() and "<|" not in segment.text
        assert "  " not in segment.text
        assert segment.words, segment
        at = segment.start
        for word in segment.words:
            assert at <= word.start <= word.end <= segment.end, (word, segment)
            assert word.word and not re.search(r"\s|<\||\u2581", word.word), word
            at = word.end


async def test_requested_language_is_reported(sensevoice: Service, speech: Speech) -> None:
    for language, reported in (("ko", "ko"), ("YUE", "yue"), ("zh-TW", "zh")):
        info = (await SENSEVOICE.events(sensevoice.url, speech.data, language=language))[0]
        assert info.language == reported
    # A hint SenseVoice does not know is dropped, not refused: it detects the language.
    info = (await SENSEVOICE.events(sensevoice.url, speech.data, language="fr-FR"))[0]
    assert info.language != "fr"


async def test_without_word_timestamps_there_are_no_words(
    sensevoice: Service, speech: Speech
) -> None:
    segments = segments_of(
        await SENSEVOICE.events(sensevoice.url, speech.data, word_timestamps=False)
    )
    assert segments
    assert all(segment.words is None for segment in segments)


async def test_silence_gives_info_and_done_only(sensevoice: Service) -> None:
    events = await SENSEVOICE.events(sensevoice.url, silence(3.0), language="zh")
    assert [type(e) for e in events] == [BackendInfo, BackendDone]
    assert (events[0].language, events[0].duration) == ("zh", 3.0)


async def test_hanging_up_cancels_between_chunks(sensevoice: Service, long_speech: Speech) -> None:
    timeout = aiohttp.ClientTimeout(total=FIRST_LOAD_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{sensevoice.url}/transcribe", data=SENSEVOICE.form(long_speech.data, language="en")
        ) as response,
    ):
        assert response.status == 200
        assert isinstance(decode_backend_event(await response.content.readline()), BackendInfo)
        first = decode_backend_event(await response.content.readline())
        assert isinstance(first, BackendSegment)
        # streamed: the first chunk is here while the rest of the audio is still ahead
        assert first.segment.end < long_speech.duration / 4

    async def idle() -> bool:
        status = await get(f"{sensevoice.url}/status")
        return status["jobs"] == 0 and not status["in_use"]

    await wait_until(idle, within=10)
    cancelled = re.findall(r"cancelled after (\d+) VAD chunks", sensevoice.output())
    assert cancelled, sensevoice.output()[-2000:]
    assert int(cancelled[-1]) < len(long_speech.spoken) / 2


async def test_without_models_nothing_is_served(tmp_path: Path) -> None:
    env = {
        "AISTACK_SENSEVOICE_MODEL_DIR": str(tmp_path / "missing"),
        "AISTACK_SENSEVOICE_VAD_DIR": str(tmp_path / "missing-too"),
    }
    service = start_module("aistack_asr_sensevoice", tmp_path / "service.log", env)
    try:
        assert (await get(f"{service.url}/info"))["data"] == []
        status, body = await refused(service.url, SENSEVOICE.form(b"RIFF"))
        assert status == 400
        assert body["error"]["provider"] == "SenseVoice"
        assert "unknown model" in body["error"]["message"]
    finally:
        service.stop()

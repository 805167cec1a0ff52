"""/v1/audio/transcriptions and /v1/audio/translations end to end: the official openai
SDK → a real edge on a real Redis → the real asr-whisper backend with the bundled
tiny.en, on speech Piper made."""

import asyncio
import json
import re
import time

import aiohttp
import openai
import pytest
import redis
import redis.asyncio

from aistack_testing.asr_protocol import at_work, idle
from aistack_testing.audio import transcode
from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import speak, words_in_order

FORMATS = ["json", "text", "verbose_json", "srt", "vtt"]
SRT_TIME = r"\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d"


@pytest.fixture(scope="module")
def client(asr_edge):
    return openai.OpenAI(base_url=asr_edge.url + "/v1", api_key="unused", max_retries=0)


def transcript_of(body, response_format: str) -> str:
    """The words of a response in any format, for word checks."""
    if response_format in ("json", "verbose_json"):
        return body.text
    if response_format == "text":
        return body
    lines = [ln for ln in body.splitlines() if ln and "-->" not in ln and not ln.isdigit()]
    return " ".join(ln for ln in lines if ln != "WEBVTT")


async def test_models_lists_whisper_and_the_auto_alias(asr_edge):
    async with aiohttp.request("GET", asr_edge.url + "/v1/models") as r:
        data = (await r.json())["data"]
    auto, *models = data
    assert auto == {
        "id": "auto",
        "object": "model",
        "owned_by": "aistack",
        "capabilities": ["asr"],
        "is_routing_alias": True,
        "supports_streaming": True,
    }
    tiny = next(m for m in models if m["id"] == "whisper-tiny.en")
    assert tiny["capabilities"] == ["asr"] and tiny["languages"] == ["en"]
    assert tiny["supports_streaming"] is True


@pytest.mark.parametrize("response_format", FORMATS)
@pytest.mark.parametrize("endpoint", ["transcriptions", "translations"])
def test_every_response_format(client, speech_wav, endpoint, response_format):
    create = getattr(client.audio, endpoint).create
    with speech_wav.open("rb") as f:
        body = create(model="whisper-1", file=f, response_format=response_format)
    assert words_in_order(SENTENCE, transcript_of(body, response_format)) >= 0.6
    if response_format == "verbose_json":
        assert body.language == "en"
        assert 4 < body.duration < 8
        assert body.task == ("translate" if endpoint == "translations" else "transcribe")
        assert [s.id for s in body.segments] == list(range(len(body.segments)))
        words = body.model_dump()["words"]  # translations' SDK type declares no words
        starts = [w["start"] for w in words]
        assert starts == sorted(starts) and all(w["end"] >= w["start"] for w in words)
    if response_format == "srt":
        assert body.startswith("1\n") and re.search(SRT_TIME, body)
    if response_format == "vtt":
        assert body.startswith("WEBVTT\n\n") and re.search(SRT_TIME.replace(",", r"\."), body)


@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".flac", ".m4a", ".webm"])
def test_uploaded_formats(client, speech_wav, tmp_path, suffix):
    audio = transcode(speech_wav, tmp_path / f"speech{suffix}")
    with audio.open("rb") as f:
        text = client.audio.transcriptions.create(model="auto", file=f, language="en").text
    assert words_in_order(SENTENCE, text) >= 0.6


def test_word_and_segment_granularities(client, speech_wav):
    with speech_wav.open("rb") as f:
        body = client.audio.transcriptions.create(
            model="auto",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert body.words and body.segments
    assert words_in_order(SENTENCE, " ".join(w.word for w in body.words)) >= 0.6


def test_subtitle_granularity_sizes_cues(client, tmp_path):
    text = (
        "Subtitles should be easy to read, so every cue stays short enough for a viewer "
        "to follow it comfortably while the speaker keeps on talking about the weather, "
        "the trains that were late this morning, and the long meeting that followed."
    )
    audio = speak(text, tmp_path / "long-sentence.wav")
    bodies = {}
    for granularity in ("sentence", "subtitle"):
        with audio.open("rb") as f:
            bodies[granularity] = client.audio.transcriptions.create(
                model="auto",
                file=f,
                response_format="verbose_json",
                extra_body={"segment_granularity": granularity},
            )
    cues = bodies["subtitle"].segments
    assert len(cues) > len(bodies["sentence"].segments)
    for cue in cues:
        assert len(cue.text.strip()) <= 70
        assert cue.end - cue.start <= 7.0
    assert bodies["subtitle"].text == bodies["sentence"].text


def test_streaming_deltas_join_to_the_text(client, speech_wav):
    with speech_wav.open("rb") as f:
        plain = client.audio.transcriptions.create(model="auto", file=f).text
    with speech_wav.open("rb") as f:
        events = list(client.audio.transcriptions.create(model="auto", file=f, stream=True))
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert deltas and events[-1].type == "transcript.text.done"
    assert "".join(d.delta for d in deltas) == plain == events[-1].text
    done = events[-1].model_dump()
    assert done["language"] == "en" and done["duration"] > 4
    for delta in deltas:
        segment = delta.model_dump()["segment"]
        assert segment["start"] <= segment["end"] and segment["words"]


@pytest.mark.parametrize(
    ("upload", "model", "status", "kind", "provider"),
    [
        (b"this is not audio at all" * 100, "auto", 400, "malformed", "Faster-Whisper"),
        (None, "whisper-large-v9", 400, "malformed", "aistack"),
    ],
)
async def test_bad_inputs(asr_edge, speech_wav, upload, model, status, kind, provider):
    form = aiohttp.FormData()
    form.add_field("file", upload or speech_wav.read_bytes(), filename="a.wav")
    form.add_field("model", model)
    async with aiohttp.request("POST", asr_edge.url + "/v1/audio/transcriptions", data=form) as r:
        assert r.status == status
        error = (await r.json())["error"]
    assert error["kind"] == kind and error["provider"] == provider and error["message"]


class _Running:
    """A request running in the background; close() hangs up."""

    def __init__(self, task: asyncio.Task) -> None:
        self.task = task

    def close(self) -> None:
        self.task.cancel()


async def _post_stream(url: str, wav, **fields) -> tuple[aiohttp.ClientSession, _Running]:
    """Start a long transcription in the background; the caller closes both handles."""
    session = aiohttp.ClientSession()
    form = aiohttp.FormData()
    form.add_field("file", wav.read_bytes(), filename=wav.name)
    for name, value in fields.items():
        form.add_field(name, value)

    async def run() -> tuple[int, bytes]:
        async with session.post(url + "/v1/audio/transcriptions", data=form) as response:
            return response.status, await response.read()

    return session, _Running(asyncio.create_task(run()))


async def _short_request(url: str, wav) -> tuple[int, dict, dict | None]:
    form = aiohttp.FormData()
    form.add_field("file", wav.read_bytes(), filename="a.wav")
    async with aiohttp.request("POST", url + "/v1/audio/transcriptions", data=form) as r:
        return r.status, dict(r.headers), (await r.json()).get("error")


async def _until_held(redis_url: str, running: _Running, key: str = "aistack:gpu-slot") -> str:
    """Wait until the running request's lease is in Redis; its holder."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        for _ in range(600):
            if token := await client.get(key):
                return token.decode().partition(" ")[2]
            if running.task.done():
                pytest.fail(f"the long request ended early: {running.task.result()}")
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    pytest.fail("the slot was never taken")


async def _seconds_until(check, limit: float) -> float:
    began = time.perf_counter()
    while not await check():
        assert time.perf_counter() - began < limit, f"not done after {limit} s"
        await asyncio.sleep(0.02)
    return time.perf_counter() - began


async def _seconds_until_free(redis_url: str, limit: float, key: str = "aistack:gpu-slot") -> float:
    client = redis.asyncio.Redis.from_url(redis_url)

    async def free() -> bool:
        return await client.get(key) is None

    try:
        return await _seconds_until(free, limit)
    finally:
        await client.aclose()


async def _hang_up(session: aiohttp.ClientSession, running: _Running, redis_url: str) -> None:
    """Hang up the running request, and wait until its slot is free: held until the
    backend's work has stopped (at its next segment), never before."""
    running.close()
    await session.close()
    await _seconds_until_free(redis_url, 15.0)


async def test_contention_is_503_with_retry_after(asr_edge, long_wav, speech_wav, redis_url):
    session, running = await _post_stream(asr_edge.url, long_wav)
    try:
        assert "whisper-tiny.en" in await _until_held(redis_url, running)
        began = time.perf_counter()
        status, headers, error = await _short_request(asr_edge.url, speech_wav)
        latency = time.perf_counter() - began
        assert status == 503 and headers["Retry-After"] == "5"
        assert latency < 1.0
        assert error["kind"] == "network" and error["provider"] == "aistack"
        assert "whisper-tiny.en" in error["message"]
    finally:
        await _hang_up(session, running, redis_url)


async def test_a_refused_upload_still_reads_its_503(asr_edge, client, long_wav, redis_url):
    """The edge refuses a busy slot before it reads the upload; the SDK, still sending
    megabytes, must get the 503 and not a broken connection."""
    session, running = await _post_stream(asr_edge.url, long_wav)
    try:
        await _until_held(redis_url, running)
        with long_wav.open("rb") as audio, pytest.raises(openai.APIStatusError) as refused:
            await asyncio.to_thread(
                client.audio.transcriptions.create, model="whisper-tiny.en", file=audio
            )
        assert refused.value.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "5"
        assert refused.value.body["kind"] == "network"
    finally:
        await _hang_up(session, running, redis_url)


async def test_two_edges_on_one_redis_share_the_slot(
    asr_edge, whisper, redis_url, services, long_wav, speech_wav
):
    other = services.start(
        "aistack_edge",
        env={"AISTACK_ASR_BACKENDS": whisper.url, "AISTACK_REDIS_URL": redis_url},
    )
    session, running = await _post_stream(asr_edge.url, long_wav)
    try:
        await _until_held(redis_url, running)
        status, _, error = await _short_request(other.url, speech_wav)
        assert status == 503 and "whisper-tiny.en" in error["message"]
    finally:
        await _hang_up(session, running, redis_url)
    assert (await _short_request(other.url, speech_wav))[0] == 200


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_hanging_up_cancels_and_frees_the_slot(
    asr_edge, whisper, long_wav, stream, redis_url
):
    session, running = await _post_stream(asr_edge.url, long_wav, stream=stream)
    await _until_held(redis_url, running)
    await _seconds_until(lambda: at_work(whisper.url), 30.0)
    running.close()
    await session.close()
    # The backend stops at its next segment (within one 30 s window's decode), and the
    # slot is freed once it has, never before: the next request can't compute beside it.
    freed_after = await _seconds_until_free(redis_url, 15.0)
    assert freed_after < 15.0
    assert await idle(whisper.url)


async def test_error_event_mid_stream(long_wav, services, redis_url):
    """A backend that dies mid-stream gives an error event, and the slot is freed."""
    doomed = services.start("aistack_asr_whisper", timeout=120)
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": doomed.url,
            "AISTACK_REDIS_URL": redis_url,
            "AISTACK_SLOT_KEY": "mid-stream",
        },
    )
    form = aiohttp.FormData()
    form.add_field("file", long_wav.read_bytes(), filename="a.wav")
    form.add_field("stream", "true")
    async with (
        aiohttp.ClientSession() as session,
        session.post(edge.url + "/v1/audio/transcriptions", data=form) as response,
    ):
        assert (await response.content.readline()).startswith(b"data: ")
        doomed.kill()
        lines = [ln async for ln in response.content if ln.startswith(b"data: ")]
    last = json.loads(lines[-1][6:])
    assert last["type"] == "error"
    assert last["error"]["kind"] == "network" and last["error"]["provider"] == "Faster-Whisper"
    # The edge releases the slot after the stream's last event: promptly, not before it.
    await _seconds_until_free(redis_url, 5.0, key="mid-stream")

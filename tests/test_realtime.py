"""Live transcription over the Realtime API: the official openai SDK's realtime client
against a real edge in front of the real asr-whisper (bundled tiny.en) on a real Redis,
with speech made by Piper and sent in 40 ms chunks at real-time pace (the hang-up's clip
and the G.711 clip go faster: their pace is not what they test).

The pure parts first (codecs, buffer, turn logic, session settings), then the sessions."""

import asyncio
import base64
import bisect
import contextlib
import json
import math
import signal
import time
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import pytest
import redis.asyncio
import websockets

from aistack_contract.errors import AistackError
from aistack_edge.realtime.audio import InputBuffer, ToVadRate, to_pcm16
from aistack_edge.realtime.events import SessionConfig, TranscriptionConfig
from aistack_edge.realtime.secrets import MemorySecrets, mint, redeem
from aistack_edge.realtime.vad import FRAME_MS, TurnDetector
from aistack_testing.asr_protocol import at_work, get, wait_until
from aistack_testing.audio import pcm
from aistack_testing.edge import (
    SLOT_KEY,
    accepted_connections,
    asr_edge_env,
    envelope,
    slot_holder,
    transcribe,
    until_free,
    until_held,
)
from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import speak, words_in_order

RATE = 24_000
CHUNK_MS = 40
TRANSCRIPTION = "conversation.item.input_audio_transcription"
SECOND = "Please send the weekly report to the whole team before noon."
MANUAL: dict[str, Any] = {"turn_detection": None}


# --- the pure parts ------------------------------------------------------------------


def test_g711_decodes_to_the_standard_values():
    """µ-law and A-law codes to 16-bit PCM, as ITU-T G.711 (the standard's end points)."""
    ulaw = array("h", to_pcm16("audio/pcmu", bytes([0x00, 0x7F, 0x80, 0xFF])))
    alaw = array("h", to_pcm16("audio/pcma", bytes([0x55, 0xD5, 0x2A, 0xAA])))
    assert list(ulaw) == [-32124, 0, 32124, 0]
    assert list(alaw) == [-8, 8, -32256, 32256]


def test_vad_rate_conversion_keeps_time_across_pieces():
    """24 kHz to 16 kHz is 3 samples to 2, whatever the pieces; 8 kHz to 16 kHz is 1 to 2."""
    audio = array("h", range(0, 30_000, 10)).tobytes()
    convert = ToVadRate(24_000)
    out = convert(audio[:1000]) + convert(audio[1000:2222]) + convert(audio[2222:])
    assert len(out) == 3000 * 2 // 3
    assert out[:4] == pytest.approx([0.0, 15 / 32768, 30 / 32768, 45 / 32768])
    assert len(ToVadRate(8_000)(audio)) == 2 * 3000 - 2  # the last sample waits for its next


def test_the_buffer_takes_a_turn_and_keeps_what_follows():
    buffer = InputBuffer(RATE, origin_ms=1000.0)
    buffer.append(b"\x01\x00" * RATE)  # one second
    assert (buffer.start_ms, buffer.end_ms) == (1000.0, 2000.0)
    turn = buffer.take(1250.0, 1750.0)
    assert len(turn) == RATE  # half a second of 16-bit samples
    assert (buffer.start_ms, buffer.end_ms) == (1750.0, 2000.0)
    buffer.drop_before(1900.0)
    assert buffer.duration_s == pytest.approx(0.1)
    buffer.clear()
    assert (buffer.duration_s, buffer.start_ms) == (0.0, 2000.0)


def test_turns_start_at_the_threshold_and_stop_after_the_silence():
    turns = TurnDetector(threshold=0.5, silence_duration_ms=200)
    probabilities = [0.1, 0.6, 0.9, 0.4, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    found = [
        (t.edge, t.ms)
        for i, p in enumerate(probabilities)
        if (t := turns.frame(p, i * FRAME_MS)) is not None
    ]
    # 0.4 is above threshold - hysteresis: speech goes on; silence from frame 4 on
    assert found == [("started", FRAME_MS), ("stopped", 4 * FRAME_MS + 224.0)]


def test_session_settings_take_both_shapes_and_refuse_a_wrong_rate():
    config = SessionConfig().updated(
        {"type": "transcription", "audio": {"input": {"turn_detection": {"threshold": 0.7}}}}
    )
    vad = config.input.turn_detection
    assert (vad.threshold, vad.silence_duration_ms) == (0.7, 500)  # only what was given
    assert (
        config.updated({"audio": {"input": {"turn_detection": None}}}).input.turn_detection is None
    )
    g711 = config.updated({"audio": {"input": {"format": {"type": "audio/pcmu"}}}})
    assert g711.rate == 8000
    beta = config.updated_beta(
        {"input_audio_format": "g711_alaw", "input_audio_transcription": {"model": "whisper-1"}}
    )
    assert (beta.input.format.type, beta.input.transcription.model) == ("audio/pcma", "whisper-1")
    assert beta.beta("sess_1")["input_audio_format"] == "g711_alaw"
    with pytest.raises(AistackError, match="24000 Hz only"):
        config.updated({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}})
    with pytest.raises(AistackError, match="transcription sessions only"):
        config.updated({"type": "realtime"})


def test_every_field_of_openais_session_is_kept_and_shown():
    """The fields of openai-python's `types/realtime` transcription session: each is kept
    and shown in `session.updated` (and the beta shape), and what a backend can use is
    used: one of `languages` as the language hint, `keywords` as prompt words."""
    fields = {
        "type": "transcription",
        "audio": {
            "input": {
                "transcription": {
                    "model": "whisper-1",
                    "prompt": "A status meeting.",
                    "languages": ["de"],
                    "keywords": ["aistack", "Redis"],
                    "delay": "low",
                },
                "noise_reduction": {"type": "far_field", "strength": 0.5},
                "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
            }
        },
        "include": ["item.input_audio_transcription.logprobs"],
    }
    config = SessionConfig().updated(fields)
    shown = config.ga("sess_1")
    given = fields["audio"]["input"]
    assert shown["audio"]["input"]["transcription"] == {**given["transcription"], "language": None}
    assert shown["audio"]["input"]["noise_reduction"] == given["noise_reduction"]
    vad = shown["audio"]["input"]["turn_detection"]
    assert (vad["type"], vad["eagerness"]) == ("semantic_vad", "high")
    assert shown["include"] == ["item.input_audio_transcription.logprobs"]
    beta = config.beta("sess_1")
    assert beta["input_audio_transcription"]["keywords"] == ["aistack", "Redis"]
    assert beta["input_audio_noise_reduction"] == given["noise_reduction"]
    used = config.input.transcription
    assert (used.language_hint, used.prompt_words) == ("de", "A status meeting. aistack, Redis")
    assert TranscriptionConfig(languages=["de", "fr"]).language_hint is None  # Whisper detects
    assert TranscriptionConfig(language="es", languages=["de"]).language_hint == "es"
    # server VAD's idle timeout; semantic VAD's eagerness sets the silence that ends a turn
    idle = config.updated({"audio": {"input": {"turn_detection": {"idle_timeout_ms": 6000}}}})
    assert idle.input.turn_detection.type == "semantic_vad"  # not a field of semantic VAD
    idle = idle.updated(
        {"audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000}}}}
    )
    assert idle.ga("s")["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 6000
    patient = config.updated(
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}}}
    )
    assert patient.input.turn_detection.silence_ms > config.input.turn_detection.silence_ms
    for bad, says in (
        ({"include": ["item.input_audio_transcription.words"]}, "session.include.0"),
        ({"audio": {"input": {"turn_detection": {"type": "fast_vad"}}}}, "fast_vad"),
        ({"audio": {"input": {"transcription": {"delay": "soon"}}}}, "delay"),
    ):
        with pytest.raises(AistackError, match=says):
            config.updated(bad)


async def test_a_client_secret_is_used_once_and_only_while_it_lives():
    store = MemorySecrets()
    live = await mint(store, {"id": "sess_1"}, ttl_s=60)
    dead = await mint(store, {"id": "sess_2"}, ttl_s=0)
    assert live.startswith("ek_") and live != dead
    assert await redeem(store, live) == {"id": "sess_1"}
    assert await redeem(store, live) is None  # used
    assert await redeem(store, dead) is None  # expired
    assert await redeem(store, "ek_never_minted") is None


# --- sessions against the real stack -------------------------------------------------


@pytest.fixture(scope="module")
def access_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("access-log")


@pytest.fixture(scope="module")
def edge(module_services, whisper, redis_server, access_log):
    # 8 sessions' utterances wait in line for the slot; on a loaded two-core machine one
    # transcription can take 20 s, so they may wait past the default.
    env = asr_edge_env(
        whisper, redis_server, access_log_dir=str(access_log), realtime_slot_wait_s="600"
    )
    return module_services.start("aistack_edge", env=env)


@pytest.fixture(scope="module")
def sentence_pcm(speech_wav) -> bytes:
    """SENTENCE (about 4.6 s), 24 kHz PCM."""
    return pcm(speech_wav, RATE)


@pytest.fixture(scope="module")
def second_pcm(tmp_path_factory) -> bytes:
    """SECOND (about 2.9 s), 24 kHz PCM."""
    return pcm(speak(SECOND, tmp_path_factory.mktemp("second") / "second.wav"), RATE)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * round(seconds * RATE)


@contextlib.asynccontextmanager
async def session(
    edge_url: str, include: list[str] | None = None, **audio_input: Any
) -> AsyncIterator[Any]:
    """A connected transcription session, its `audio.input` settings (and `include`,
    when given) updated."""
    client = openai.AsyncOpenAI(base_url=edge_url + "/v1", api_key="unused")
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        created = await conn.recv()
        assert created.type == "session.created", created
        update: dict[str, Any] = {"type": "transcription", "audio": {"input": audio_input}}
        if include is not None:
            update["include"] = include
        await conn.send({"type": "session.update", "session": update})
        updated = await conn.recv()
        assert updated.type == "session.updated", updated
        yield conn


async def say(conn: Any, audio: bytes, paced: bool = True) -> None:
    """Append `audio` in CHUNK_MS pieces, at real-time pace unless `paced` is false."""
    step = RATE * 2 * CHUNK_MS // 1000
    began = time.monotonic()
    for n, at in enumerate(range(0, len(audio), step)):
        piece = base64.b64encode(audio[at : at + step]).decode()
        await conn.send({"type": "input_audio_buffer.append", "audio": piece})
        if paced:
            await asyncio.sleep(max(0.0, began + (n + 1) * CHUNK_MS / 1000 - time.monotonic()))


async def until(conn: Any, kind: str, count: int = 1, within: float = 300) -> list[Any]:
    """Every event received until the `count`-th of type `kind`, that one included."""
    got: list[Any] = []
    async with asyncio.timeout(within):
        while sum(e.type == kind for e in got) < count:
            got.append(await conn.recv())
    return got


def of(events: list[Any], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


def metric(edge_url: str, line: str) -> float:
    text = httpx.get(edge_url + "/metrics", timeout=10).text
    found = [row for row in text.splitlines() if row.startswith(line + " ")]
    return float(found[0].rpartition(" ")[2]) if found else 0.0


async def test_server_vad_finds_each_utterance_and_transcribes_it(edge, sentence_pcm, second_pcm):
    """Two utterances with a pause between: two turns, each committed after its speech,
    transcribed, its deltas joining to its transcript."""
    async with session(edge.url, turn_detection={"type": "server_vad"}) as conn:
        audio = silence(0.5) + sentence_pcm + silence(1.2) + second_pcm + silence(1.2)
        speaking = asyncio.create_task(say(conn, audio))
        got = await until(conn, f"{TRANSCRIPTION}.completed", count=2)
        await speaking
    started, stopped = (
        of(got, "input_audio_buffer.speech_started"),
        of(got, "input_audio_buffer.speech_stopped"),
    )
    committed, completed = (
        of(got, "input_audio_buffer.committed"),
        of(got, f"{TRANSCRIPTION}.completed"),
    )
    assert len(started) == len(stopped) == len(committed) == 2, [e.type for e in got]
    first_end_ms = 500 + len(sentence_pcm) / 48
    assert 0 <= started[0].audio_start_ms <= 500  # the speech begins at 500 ms, less padding
    assert first_end_ms < stopped[0].audio_end_ms < first_end_ms + 1200
    assert stopped[0].audio_end_ms < started[1].audio_start_ms < stopped[1].audio_end_ms
    assert [c.previous_item_id for c in committed] == [None, committed[0].item_id]
    for n, text in enumerate((SENTENCE, SECOND)):
        item = committed[n].item_id
        assert started[n].item_id == stopped[n].item_id == item == completed[n].item_id
        assert words_in_order(text, completed[n].transcript) >= 0.6, completed[n].transcript
        deltas = [e.delta for e in of(got, f"{TRANSCRIPTION}.delta") if e.item_id == item]
        assert deltas and "".join(deltas) == completed[n].transcript
        span_s = (stopped[n].audio_end_ms - started[n].audio_start_ms) / 1000
        assert completed[n].usage.type == "duration"
        assert completed[n].usage.seconds == pytest.approx(span_s, abs=0.05)
    assert metric(edge.url, 'aistack_realtime_utterances_total{model="whisper-tiny.en",'
                  'outcome="completed"}') >= 2  # fmt: skip


async def test_manual_commit_streams_deltas_that_join_to_the_transcript(edge, second_pcm):
    async with session(edge.url, **MANUAL) as conn:
        await say(conn, second_pcm)
        await conn.send({"type": "input_audio_buffer.commit"})
        got = await until(conn, f"{TRANSCRIPTION}.completed")
    assert not of(got, "input_audio_buffer.speech_started")
    (committed,) = of(got, "input_audio_buffer.committed")
    (completed,) = of(got, f"{TRANSCRIPTION}.completed")
    deltas = of(got, f"{TRANSCRIPTION}.delta")
    kinds = [e.type for e in got]
    assert kinds.index("input_audio_buffer.committed") < kinds.index(f"{TRANSCRIPTION}.delta")
    assert committed.previous_item_id is None
    assert {d.item_id for d in deltas} == {committed.item_id} == {completed.item_id}
    assert "".join(d.delta for d in deltas) == completed.transcript
    assert words_in_order(SECOND, completed.transcript) >= 0.6, completed.transcript


async def test_include_logprobs_puts_them_on_each_delta_and_the_completed_event(edge, second_pcm):
    """As OpenAI's types have them: with the include, `logprobs: [{token, logprob,
    bytes}]` on every delta (its tokens join to its text) and on `completed` (all of
    them); without it, none."""
    logprobs = ["item.input_audio_transcription.logprobs"]
    async with session(edge.url, include=logprobs, **MANUAL) as conn:
        await say(conn, second_pcm, paced=False)
        await conn.send({"type": "input_audio_buffer.commit"})
        got = await until(conn, f"{TRANSCRIPTION}.completed")
    (completed,) = of(got, f"{TRANSCRIPTION}.completed")
    deltas = of(got, f"{TRANSCRIPTION}.delta")
    assert deltas and all(d.logprobs for d in deltas), deltas
    for delta in deltas:
        assert "".join(entry.token for entry in delta.logprobs) == delta.delta
    assert completed.logprobs == [entry for d in deltas for entry in d.logprobs]
    assert "".join(e.token for e in completed.logprobs) == completed.transcript
    for entry in completed.logprobs:
        assert entry.logprob <= 0 and math.isfinite(entry.logprob)
        assert entry.bytes == list(entry.token.encode())
    async with session(edge.url, **MANUAL) as conn:  # not asked: not sent
        await say(conn, second_pcm, paced=False)
        await conn.send({"type": "input_audio_buffer.commit"})
        got = await until(conn, f"{TRANSCRIPTION}.completed")
    assert all(e.logprobs is None for e in of(got, f"{TRANSCRIPTION}.delta"))
    assert of(got, f"{TRANSCRIPTION}.completed")[0].logprobs is None


async def test_clear_empties_the_buffer(edge, sentence_pcm, second_pcm):
    """Cleared audio is never transcribed: a commit right after is an error, and the
    next utterance's transcript holds none of it."""
    async with session(edge.url, **MANUAL) as conn:
        await say(conn, sentence_pcm[: len(sentence_pcm) // 2])
        await conn.send({"type": "input_audio_buffer.clear"})
        await until(conn, "input_audio_buffer.cleared")
        await conn.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
        (error,) = await until(conn, "error")
        assert error.error.kind == "malformed" and error.error.event_id == "evt_commit"
        assert "0 ms" in error.error.message
        await say(conn, second_pcm)
        await conn.send({"type": "input_audio_buffer.commit"})
        got = await until(conn, f"{TRANSCRIPTION}.completed")
    transcript = of(got, f"{TRANSCRIPTION}.completed")[0].transcript
    assert words_in_order(SECOND, transcript) >= 0.6
    assert "fox" not in transcript.lower()


async def test_bad_events_are_error_events_and_the_session_goes_on(edge, second_pcm):
    bad: list[tuple[Any, str]] = [
        ({"type": "bogus.event"}, "unknown event type 'bogus.event'"),
        ("this is not json", "must be JSON"),
        ('["a list"]', 'string "type"'),
        ({"type": "input_audio_buffer.append", "audio": "@@not base64@@"}, "not base64"),
        ({"type": "input_audio_buffer.append"}, "audio"),
        (
            {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                },
            },
            "24000 Hz only",
        ),
        ({"type": "session.update", "session": {"type": "realtime"}}, "transcription sessions"),
        (
            {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"transcription": {"model": "no-such-model"}}},
                },
            },
            "unknown ASR model 'no-such-model'",
        ),
        ({"type": "response.create"}, "conversation sessions"),
        ({"type": "input_audio_buffer.commit"}, "at least 100 ms"),
    ]
    async with session(edge.url, **MANUAL) as conn:
        for n, (sent, says) in enumerate(bad):
            if isinstance(sent, dict):
                await conn.send_raw(json.dumps({**sent, "event_id": f"evt_{n}"}))
            else:
                await conn.send_raw(sent)
            (error,) = await until(conn, "error", within=10)
            assert says in error.error.message, error
            assert error.error.kind == "malformed" and error.error.provider == "aistack"
            assert error.error.type == "invalid_request_error"
            assert error.error.event_id == (f"evt_{n}" if isinstance(sent, dict) else None)
        await conn.send_raw(b"\x00binary")
        (error,) = await until(conn, "error", within=10)
        assert "JSON text" in error.error.message
        # the session still works, with its settings unchanged by the refused updates;
        # the beta shape of an update (older clients) is taken and answered in kind
        beta = {"input_audio_format": "pcm16", "input_audio_transcription": {"model": "auto"}}
        await conn.send_raw(json.dumps({"type": "transcription_session.update", "session": beta}))
        (updated,) = await until(conn, "transcription_session.updated", within=10)
        assert updated.session["input_audio_format"] == "pcm16"
        assert updated.session["turn_detection"] is None  # unchanged: manual commits
        await say(conn, second_pcm)
        await conn.send({"type": "input_audio_buffer.commit"})
        got = await until(conn, f"{TRANSCRIPTION}.completed")
    assert words_in_order(SECOND, got[-1].transcript) >= 0.6


async def test_the_route_refuses_what_is_not_a_transcription_session(edge):
    async with aiohttp.ClientSession() as http:
        async with http.get(edge.url + "/v1/realtime?intent=transcription") as plain:
            assert plain.status == 400
            assert "WebSocket" in envelope(await plain.read(), "malformed")["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(edge.url + "/v1/realtime?model=gpt-realtime")
        assert refused.value.status == 400


@pytest.mark.parametrize("audio_format", ["audio/pcmu", "audio/pcma"])
async def test_g711_sessions_are_transcribed(edge, second_pcm, audio_format):
    """audio/pcmu (µ-law) and audio/pcma (A-law) at 8 kHz: the client's G.711 is decoded
    and transcribed."""
    levels = sorted((value, code) for code, value in enumerate(array("h", to_pcm16(
        audio_format, bytes(range(256))))))  # fmt: skip
    values = [v for v, _ in levels]
    narrow = array("h", pcm_at_8k(second_pcm))
    ulaw = bytes(levels[min(bisect.bisect_left(values, s), 255)][1] for s in narrow)
    async with session(edge.url, format={"type": audio_format}, turn_detection=None) as conn:
        step = 8000 * CHUNK_MS // 1000
        for at in range(0, len(ulaw), step):
            piece = base64.b64encode(ulaw[at : at + step]).decode()
            await conn.send({"type": "input_audio_buffer.append", "audio": piece})
        await conn.send({"type": "input_audio_buffer.commit"})
        got = await until(conn, f"{TRANSCRIPTION}.completed")
    completed = got[-1]
    assert completed.usage.seconds == pytest.approx(len(ulaw) / 8000, abs=0.05)
    assert words_in_order(SECOND, completed.transcript) >= 0.5, completed.transcript


def pcm_at_8k(audio: bytes) -> bytes:
    samples = array("h", audio)
    return array("h", samples[::3]).tobytes()  # 24 kHz to 8 kHz (speech is below 4 kHz)


async def test_a_full_queue_drops_the_oldest_waiting_and_says_so(
    module_services, whisper, redis_server, second_pcm
):
    """The slot held elsewhere: the first utterance waits in line for it, the queue
    (1 here) holds the second, and a third drops the second with a `failed` event; the
    first fails once its wait is over (`network`), the third is transcribed once the
    slot is free."""
    edge = module_services.start(
        "aistack_edge",
        env={
            "AISTACK_ASR_BACKENDS": whisper.url,
            "AISTACK_REDIS_URL": redis_server.url,
            "AISTACK_REALTIME_QUEUE": "1",
            "AISTACK_REALTIME_SLOT_WAIT_S": "3",
        },
    )
    await until_free(redis_server.url)
    store = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await store.set(SLOT_KEY, f"elsewhere.{int(time.time() * 1000)} another edge", px=60_000)
        async with session(edge.url, **MANUAL) as conn:
            for _ in range(3):
                await say(conn, second_pcm, paced=False)
                await conn.send({"type": "input_audio_buffer.commit"})
            got = await until(conn, f"{TRANSCRIPTION}.failed", count=2, within=30)
            await store.delete(SLOT_KEY)
            got += await until(conn, f"{TRANSCRIPTION}.completed")
    finally:
        await store.aclose()
    first, second, third = (c.item_id for c in of(got, "input_audio_buffer.committed"))
    dropped, waited = of(got, f"{TRANSCRIPTION}.failed")
    assert (dropped.item_id, dropped.error.kind) == (second, "overflow")
    assert "AISTACK_REALTIME_QUEUE" in dropped.error.message
    assert (waited.item_id, waited.error.kind) == (first, "network")
    assert "another edge" in waited.error.message
    (completed,) = of(got, f"{TRANSCRIPTION}.completed")
    assert completed.item_id == third
    assert words_in_order(SECOND, completed.transcript) >= 0.6


async def test_an_idle_session_holds_no_slot(edge, redis_server, speech_wav):
    """A session that listens to silence (4 s here: long enough to span several lease
    renewals of a held slot, short for the suite) never takes the slot: a file
    transcription from another client is served meanwhile."""
    async with session(edge.url, turn_detection={"type": "server_vad"}) as conn:
        await say(conn, silence(1.0))  # listening already
        listening = asyncio.create_task(say(conn, silence(3.0)))
        status, _, body = await transcribe(edge.url, speech_wav.read_bytes())
        assert status == 200, body
        while not listening.done():
            assert await slot_holder(redis_server.url) is None
            await asyncio.sleep(0.2)
        await listening
        await conn.send({"type": "input_audio_buffer.clear"})
        got = await until(conn, "input_audio_buffer.cleared", within=10)
    assert not of(got, "input_audio_buffer.speech_started")


async def test_a_hang_up_frees_everything(
    edge, whisper, redis_server, sentence_pcm, second_pcm, speech_wav
):
    """Gone mid-speech, nothing was held; gone while its utterance is transcribed, the
    backend's job is stopped and the slot released; no session is left open."""
    async with session(edge.url, turn_detection={"type": "server_vad"}) as conn:
        speaking = asyncio.create_task(say(conn, silence(0.3) + pcm(speech_wav, RATE)))
        await until(conn, "input_audio_buffer.speech_started")
        speaking.cancel()  # and the client goes
    assert await slot_holder(redis_server.url) is None
    # Distinct sentences: one repeated makes Whisper fall back to sampling, window after
    # window, and its job then stops only after many seconds on a loaded machine.
    speech = sentence_pcm + silence(0.3) + second_pcm
    disconnects = 'aistack_realtime_utterances_total{model="whisper-tiny.en",outcome="disconnect"}'
    before = metric(edge.url, disconnects)
    async with session(edge.url, **MANUAL) as conn:
        await say(conn, speech, paced=False)
        await conn.send({"type": "input_audio_buffer.commit"})
        await until(conn, "input_audio_buffer.committed")
        holder = await until_held(redis_server.url)
        assert "whisper-tiny.en" in holder
        await wait_until(lambda: at_work(whisper.url), 30)  # hang up mid-transcription
    await until_free(redis_server.url, limit_s=60)
    jobs = (await get(whisper.url + "/status"))["job_log"]
    assert all(job["ended"] for job in jobs), jobs  # its job stopped, then the slot was freed

    async def counted() -> bool:
        return metric(edge.url, disconnects) >= before + 1

    await wait_until(counted, 10)
    assert metric(edge.url, disconnects) == before + 1
    assert metric(edge.url, "aistack_realtime_sessions_open") == 0
    assert (
        metric(edge.url, "aistack_slot_holder" + '{capability="asr",model="whisper-tiny.en"}') == 0
    )
    await served(edge.url, speech_wav.read_bytes())


async def served(edge_url: str, audio: bytes, within: float = 60) -> None:
    """A file transcription succeeds (a 503 is retried: on a loaded machine the backend
    may miss a probe while it computes)."""
    deadline = time.monotonic() + within
    while (answer := await transcribe(edge_url, audio))[0] == 503:
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(1.0)
    assert answer[0] == 200, answer


async def test_eight_sessions_and_http_traffic_leave_nothing_behind(
    edge, redis_server, second_pcm, speech_wav, access_log
):
    """8 sessions speak at once while another client posts files: every utterance is
    transcribed in turn (they wait in line for the slot), the files are served or told
    503, and afterwards no lease, no session, no slot holder and no connection is left."""

    async def one_session() -> str:
        async with session(edge.url, turn_detection={"type": "server_vad"}) as conn:
            speaking = asyncio.create_task(say(conn, silence(0.3) + second_pcm + silence(1.0)))
            got = await until(conn, f"{TRANSCRIPTION}.completed", within=600)
            await speaking
            return got[-1].transcript

    async def http_client() -> list[int]:
        statuses = []
        for _ in range(3):
            status, _, body = await transcribe(edge.url, speech_wav.read_bytes())
            assert status in (200, 503), body
            statuses.append(status)
            await asyncio.sleep(1.0)
        return statuses

    *transcripts, statuses = await asyncio.gather(*(one_session() for _ in range(8)), http_client())
    for transcript in transcripts:
        assert words_in_order(SECOND, transcript) >= 0.6, transcript
    assert set(statuses) <= {200, 503}
    await until_free(redis_server.url, limit_s=30)
    assert metric(edge.url, "aistack_realtime_sessions_open") == 0
    assert (
        metric(edge.url, "aistack_slot_holder" + '{capability="asr",model="whisper-tiny.en"}') == 0
    )
    port = int(edge.url.rpartition(":")[2])
    for _ in range(100):  # closing sockets take a moment to go
        if not accepted_connections(port):
            break
        await asyncio.sleep(0.1)
    assert accepted_connections(port) == 0
    recent = httpx.get(edge.url + "/admin/api/status", timeout=10).json()
    utterances = [r for r in recent["recent"] if r["method"] == "WS"]
    assert len(utterances) >= 8 and {r["capability"] for r in utterances} == {"asr"}

    def logged() -> tuple[list[dict], list[dict]]:
        """The access log's sessions and utterances so far (it is written in batches)."""
        lines = [json.loads(line) for f in access_log.glob("*.jsonl") for line in f.open()]
        sessions = [e for e in lines if e["method"] == "GET" and e["status"] == 101]
        return sessions, [e for e in lines if e["method"] == "WS"]

    async def all_logged() -> bool:
        sessions, parts = logged()
        return len(sessions) >= 8 and len(parts) >= 8

    await wait_until(all_logged, 10)
    sessions, parts = logged()
    assert len(sessions) >= 8 and {e["path"] for e in sessions} == {"/v1/realtime"}
    assert {e["capability"] for e in sessions} == {"realtime"}
    assert len(parts) >= 8 and {e["model"] for e in parts} == {"whisper-tiny.en"}
    assert all(e["bytes_in"] > 0 and e["slot_wait_ms"] is not None for e in parts)


async def test_a_stopping_edge_closes_its_sessions(module_services):
    """SIGTERM with a session open: the client is told the server goes away (1001), and
    the edge exits at once rather than wait on it."""
    edge = module_services.start("aistack_edge")
    client = openai.AsyncOpenAI(base_url=edge.url + "/v1", api_key="unused")
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        assert (await conn.recv()).type == "session.created"
        edge.proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert await asyncio.to_thread(edge.proc.wait, 10) == 0


# --- OpenAI's newer session fields, browsers' authentication --------------------------


async def test_semantic_vad_and_every_field_are_taken_shown_and_used(edge, second_pcm):
    """A session.update with every field of openai-python's transcription session:
    `session.updated` shows each as given, and a turn spoken under semantic VAD is found
    and transcribed with the keywords as prompt words and the one language as the hint."""
    transcription = {
        "model": "whisper-1",
        "prompt": "A note to the team.",
        "languages": ["en"],
        "keywords": ["weekly report", "noon"],
        "delay": "minimal",
    }
    audio_input = {
        "transcription": transcription,
        "noise_reduction": {"type": "near_field"},
        "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
    }
    update = {
        "type": "transcription",
        "audio": {"input": audio_input},
        "include": ["item.input_audio_transcription.logprobs"],
    }
    client = openai.AsyncOpenAI(base_url=edge.url + "/v1", api_key="unused")
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.send({"type": "session.update", "session": update})
        (updated,) = of(await until(conn, "session.updated", within=10), "session.updated")
        speaking = asyncio.create_task(say(conn, silence(0.3) + second_pcm + silence(1.0)))
        got = await until(conn, f"{TRANSCRIPTION}.completed")
        await speaking
    shown = updated.session.audio.input
    assert shown.transcription.model_dump(exclude_none=True) == transcription
    assert shown.noise_reduction.type == "near_field"
    assert (shown.turn_detection.type, shown.turn_detection.eagerness) == ("semantic_vad", "high")
    assert updated.session.include == ["item.input_audio_transcription.logprobs"]
    assert [e.type for e in got if e.type.startswith("input_audio_buffer")] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert words_in_order(SECOND, got[-1].transcript) >= 0.6, got[-1].transcript


async def test_an_idle_timeout_is_a_committed_empty_item(edge):
    """server_vad's `idle_timeout_ms`: each 1000 ms of appended audio without speech is
    an `input_audio_buffer.timeout_triggered`, then its item committed and completed with
    the empty transcript the VAD heard (no GPU work)."""
    async with session(
        edge.url, turn_detection={"type": "server_vad", "idle_timeout_ms": 1000}
    ) as conn:
        await say(conn, silence(2.6), paced=False)
        got = await until(conn, f"{TRANSCRIPTION}.completed", count=2, within=30)
    triggered = of(got, "input_audio_buffer.timeout_triggered")
    committed = of(got, "input_audio_buffer.committed")
    completed = of(got, f"{TRANSCRIPTION}.completed")
    assert len(triggered) == len(committed) == len(completed) == 2, [e.type for e in got]
    assert [t.item_id for t in triggered] == [c.item_id for c in committed]
    assert [c.item_id for c in completed] == [c.item_id for c in committed]
    assert committed[1].previous_item_id == committed[0].item_id
    assert triggered[0].audio_start_ms == 0
    assert triggered[1].audio_start_ms == triggered[0].audio_end_ms
    for timeout, done in zip(triggered, completed, strict=True):
        # found at the first append (40 ms) or VAD frame (32 ms) past the timeout
        assert 1000 <= timeout.audio_end_ms - timeout.audio_start_ms <= 1000 + 80
        assert done.transcript == ""
        assert done.usage.seconds * 1000 == pytest.approx(
            timeout.audio_end_ms - timeout.audio_start_ms, abs=1
        )


async def test_the_handshake_selects_the_realtime_subprotocol(edge):
    """A browser's client offers `realtime` and its key as subprotocols (it cannot set
    Authorization on a WebSocket) and fails a handshake that selects none: the edge
    selects `realtime`, never the key."""
    url = edge.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    offered = ["openai-insecure-api-key.sk-local", "realtime"]
    async with websockets.connect(url, subprotocols=offered) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(await ws.recv())["type"] == "session.created"


async def test_a_client_secret_opens_one_session_with_its_settings(edge):
    """POST /v1/realtime/client_secrets through the SDK: an `ek_` secret that opens one
    session with the settings it was minted with (its id, its turn detection), as a
    bearer token (the SDK) or a subprotocol (a browser); a second use, an unknown secret
    and a bad request are refused."""
    client = openai.AsyncOpenAI(base_url=edge.url + "/v1", api_key="unused")
    minted = await client.realtime.client_secrets.create(
        session={
            "type": "transcription",
            "audio": {"input": {"turn_detection": None, "transcription": {"language": "en"}}},
        },
        expires_after={"anchor": "created_at", "seconds": 60},
    )
    assert minted.value.startswith("ek_")
    assert time.time() < minted.expires_at <= time.time() + 61
    assert minted.session.type == "transcription"
    by_secret = openai.AsyncOpenAI(base_url=edge.url + "/v1", api_key=minted.value)
    async with by_secret.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        created = await conn.recv()
    assert created.session.id == minted.session.id
    assert created.session.audio.input.turn_detection is None
    assert created.session.audio.input.transcription.language == "en"
    url = edge.url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    for secret in (minted.value, "ek_never_minted"):
        offered = ["realtime", f"openai-insecure-api-key.{secret}"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(url, subprotocols=offered):
                pass
        assert refused.value.response.status_code == 401
    second = await client.realtime.client_secrets.create(session={"type": "transcription"})
    offered = ["realtime", f"openai-insecure-api-key.{second.value}"]
    async with websockets.connect(url, subprotocols=offered) as ws:
        created = json.loads(await ws.recv())
    assert created["session"]["id"] == second.session.id
    for bad, says in (
        ({"expires_after": {"anchor": "created_at", "seconds": 5}}, "seconds"),
        ({"session": {"type": "realtime"}}, "transcription sessions only"),
        (
            {
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
                }
            },
            "unknown ASR model",
        ),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.realtime.client_secrets.create(**bad)
        assert says in refused.value.message


@pytest.fixture(scope="module")
def small_buffer_edge(module_services, whisper, redis_server):
    """An edge whose input buffer holds 2.5 s (AISTACK_REALTIME_MAX_BUFFER_S): not a
    multiple of 40 ms appends, as 300 s is not a sum of them in floats."""
    env = asr_edge_env(whisper, redis_server, realtime_max_buffer_s="2.5")
    return module_services.start("aistack_edge", env=env)


async def test_server_vad_commits_a_turn_at_the_buffers_limit(small_buffer_edge, sentence_pcm):
    """A turn longer than AISTACK_REALTIME_MAX_BUFFER_S, in 40 ms appends: it is
    committed at the limit and the speech goes on into the next turn; no append is
    refused."""
    async with session(small_buffer_edge.url, turn_detection={"type": "server_vad"}) as conn:
        await say(conn, silence(0.3) + sentence_pcm + silence(1.0), paced=False)
        got = await until(conn, f"{TRANSCRIPTION}.completed", count=2, within=120)
    assert not of(got, "error"), of(got, "error")
    stopped = of(got, "input_audio_buffer.speech_stopped")
    assert len(stopped) == 2
    started = of(got, "input_audio_buffer.speech_started")
    first_length_ms = stopped[0].audio_end_ms - started[0].audio_start_ms
    assert 2500 - 40 <= first_length_ms <= 2500
    assert started[1].audio_start_ms >= stopped[0].audio_end_ms - 300  # its own padding
    heard = " ".join(c.transcript for c in of(got, f"{TRANSCRIPTION}.completed"))
    assert words_in_order(SENTENCE, heard) >= 0.6, heard


async def test_utterances_share_the_slots_line_bounded_by_slot_wait_max(
    module_services, whisper, redis_server, second_pcm
):
    """AISTACK_SLOT_WAIT_MAX bounds realtime utterances too: with the slot held elsewhere
    and a line of one, the first session's utterance waits in it; the second's is refused
    as busy (`network`) while the first still waits; the first is transcribed once the
    slot is free."""
    edge = module_services.start(
        "aistack_edge",
        env=asr_edge_env(whisper, redis_server, slot_wait_max="1", realtime_slot_wait_s="300"),
    )
    await until_free(redis_server.url)
    store = redis.asyncio.Redis.from_url(redis_server.url)

    async def waiting() -> bool:
        status = await asyncio.to_thread(httpx.get, edge.url + "/admin/api/status", timeout=10)
        return status.json()["slot"]["waiting"] == 1

    try:
        await store.set(SLOT_KEY, f"elsewhere.{int(time.time() * 1000)} another edge", px=300_000)
        async with session(edge.url, **MANUAL) as first, session(edge.url, **MANUAL) as second:
            await say(first, second_pcm, paced=False)
            await first.send({"type": "input_audio_buffer.commit"})
            await wait_until(waiting, 60)
            await say(second, second_pcm, paced=False)
            await second.send({"type": "input_audio_buffer.commit"})
            (refused,) = of(
                await until(second, f"{TRANSCRIPTION}.failed", within=60), f"{TRANSCRIPTION}.failed"
            )
            assert await waiting()  # the first still waits: the refusal did not wait
            await store.delete(SLOT_KEY)
            (done,) = of(
                await until(first, f"{TRANSCRIPTION}.completed"), f"{TRANSCRIPTION}.completed"
            )
    finally:
        await store.delete(SLOT_KEY)
        await store.aclose()
    assert refused.error.kind == "network" and "busy" in refused.error.message
    assert words_in_order(SECOND, done.transcript) >= 0.6, done.transcript

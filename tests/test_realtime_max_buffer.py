"""Server VAD commits a turn that reaches AISTACK_REALTIME_MAX_BUFFER_S, whatever the size
of the appends: with 40 ms appends the buffer never lands on the limit exactly, and the
append that would pass it used to be refused (an overflow) before the commit could fire,
and every later one too."""

import asyncio

import pytest

from aistack_testing.edge import asr_edge_env
from tests.test_realtime import CHUNK_MS, of, say, session, silence

LIMIT_S = 1.99  # not a whole number of 40 ms appends


@pytest.fixture(scope="module")
def edge(module_services, whisper, redis_server):
    env = asr_edge_env(whisper, redis_server, realtime_max_buffer_s=str(LIMIT_S))
    return module_services.start("aistack_edge", env=env)


@pytest.fixture(scope="module")
def speech_pcm(speech_wav) -> bytes:
    from aistack_testing.audio import pcm
    from tests.test_realtime import RATE

    return pcm(speech_wav, RATE)  # about 4.6 s of speech, no pause long enough for VAD


async def until_either(conn, *kinds: str, within: float = 120) -> list:
    """Every event received until the first of one of `kinds`, that one included."""
    got: list = []
    async with asyncio.timeout(within):
        while not got or got[-1].type not in kinds:
            got.append(await conn.recv())
    return got


async def test_a_turn_at_the_buffer_limit_is_committed_not_refused(edge, speech_pcm):
    assert (LIMIT_S * 1000) % CHUNK_MS
    async with session(edge.url, turn_detection={"type": "server_vad"}) as conn:
        await say(conn, speech_pcm + silence(1.0), paced=False)
        got = await until_either(conn, "input_audio_buffer.committed", "error")
    assert not of(got, "error"), of(got, "error")
    stops = of(got, "input_audio_buffer.speech_stopped")
    assert stops and stops[0].audio_end_ms <= LIMIT_S * 1000 + CHUNK_MS

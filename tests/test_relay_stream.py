"""A transcription stream (stream=true, SSE) to a client that never reads: the edge's
outbox (edge/aistack_edge/relay.py) reads Whisper's events at Whisper's pace, and a
client that reads nothing for AISTACK_CLIENT_WRITE_TIMEOUT_S is cut off as a hang-up, so
its job is stopped and the slot freed. The speech and chat relays have the same tests
(test_speech.py, test_chat.py)."""

import asyncio
import time

from aistack_testing.audio import repeat_wav
from aistack_testing.edge import (
    asr_edge_env,
    cut_off,
    form_body,
    never_reading,
    until_free,
    until_held,
)

KEY = "aistack:test-transcription-never-read"
WRITE_TIMEOUT_S = 3


def test_a_stream_reader_that_reads_nothing_is_cut_off(
    module_services, whisper, redis_server, speech_wav, tmp_path
):
    """Fifteen minutes of speech make far more events than the connection's buffers hold
    (about 130 kB): once they are full, a client that reads nothing for the write timeout
    is cut off, its job stopped and the slot free, long before Whisper would end. On a
    stream written at the client's pace, the slot stayed held while the edge waited on
    the client for ever."""
    env = asr_edge_env(
        whisper, redis_server, slot_key=KEY, client_write_timeout_s=str(WRITE_TIMEOUT_S)
    )
    edge = module_services.start("aistack_edge", env=env)
    wav = repeat_wav(speech_wav, tmp_path / "long.wav", 900).read_bytes()
    # with logprobs: the biggest events a stream has, about 1 kB per second of speech
    fields = {"model": "auto", "stream": "true", "include[]": "logprobs"}
    body, content_type = form_body(fields, wav)
    stops = whisper.output().count("DELETE /jobs")
    with never_reading(edge.url, "/v1/audio/transcriptions", body, content_type) as sock:
        assert "asr" in asyncio.run(until_held(redis_server.url, KEY, limit_s=120))
        received = cut_off(sock, limit_s=400)
        cut = time.monotonic()
        asyncio.run(until_free(redis_server.url, KEY, limit_s=120))
        freed_s = time.monotonic() - cut
    assert b"transcript.text.delta" in received
    assert b"transcript.text.done" not in received  # cut off, long before the end
    assert whisper.output().count("DELETE /jobs") > stops  # the job was stopped
    print(f"slot free {freed_s:.2f} s after the cut")

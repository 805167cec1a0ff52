"""/v1/audio/speech and the other TTS paths through the edge: the official openai SDK →
a real edge on a real Redis → a real tts-piper process, and asr-whisper behind the same
edge for the round trip. The fake vLLM-Omni (aistack_testing.vllm_omni, written from
vLLM-Omni's source) stands for the Qwen3-TTS server, whose weights can't be had here: it
keeps every request, so the tests see what the edge passes on, byte for byte."""

import asyncio
import base64
import contextlib
import gzip
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import av
import httpx
import openai
import pytest

from aistack_contract.errors import AistackError
from aistack_edge.tts.ref_audio import RefAudioPolicy
from aistack_testing.doubles import in_thread
from aistack_testing.edge import cut_off, never_reading, until_free, until_held
from aistack_testing.memory import PeakGrowth
from aistack_testing.plugin import SENTENCE
from aistack_testing.processes import free_port
from aistack_testing.speech import words_in_order
from aistack_testing.vllm_omni import FakeVllmOmni

QWEN = "qwen3-tts-12hz-0.6b-customvoice"
LONG = " ".join(
    f"This is sentence number {n}, and it carries a handful of further words to speak."
    for n in range(1, 6)
)
# format: (sample rate of the decoded audio); pcm is headerless s16le at OpenAI's 24 kHz.
RATES = {"wav": 22050, "mp3": 22050, "opus": 48000, "aac": 22050, "flac": 22050}
PCM_RATE = 24000


@pytest.fixture(scope="module")
def vllm() -> Iterator[FakeVllmOmni]:
    with in_thread(FakeVllmOmni(QWEN)) as fake:
        yield fake


DIRECT = "X-Test-Direct"  # marks a test's own request to the fake


def relayed(fake: FakeVllmOmni) -> tuple[str, str, dict[str, str], bytes]:
    """The last request the edge relayed to `fake` (not its model listings or probes,
    nor a test's own `direct` asks)."""
    return next(
        r for r in reversed(fake.requests) if r[1].startswith("/v1/audio/") and DIRECT not in r[2]
    )


def direct(fake: FakeVllmOmni, body: bytes) -> bytes:
    """What `fake` answers to `body` asked directly: the audio the edge must pass on."""
    answer = httpx.post(
        fake.url + "/v1/audio/speech", content=body, headers={DIRECT: "1"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.content


@contextlib.contextmanager
def cut_after(fake: FakeVllmOmni, size: int) -> Iterator[None]:
    """`fake` drops its connection `size` bytes into each answer, for the block."""
    fake.cut_after = size
    try:
        yield
    finally:
        fake.cut_after = None


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory) -> Path:
    """The reference audio directory, a file in it, and escapes out of it."""
    root = tmp_path_factory.mktemp("ref-audio")
    inside, outside = root / "refs", root / "private"
    inside.mkdir()
    outside.mkdir()
    (inside / "voice.wav").write_bytes(b"RIFF")
    (outside / "secret.wav").write_bytes(b"RIFF")
    (inside / "link.wav").symlink_to(outside / "secret.wav")
    (inside / "sub").symlink_to(outside)
    return inside


@pytest.fixture(scope="module")
def edge(module_services, piper, vllm, whisper, redis_server, ref_dir):
    return module_services.start(
        "aistack_edge",
        env={
            "AISTACK_TTS_BACKENDS": f"{piper.url},{vllm.url}",
            "AISTACK_ASR_BACKENDS": whisper.url,
            "AISTACK_REDIS_URL": redis_server.url,
            "AISTACK_SLOT_KEY": "aistack:test-speech",
            "AISTACK_TTS_REF_AUDIO_DIR": str(ref_dir),
        },
    )


@pytest.fixture(scope="module")
def client(edge) -> openai.OpenAI:
    return openai.OpenAI(base_url=edge.url + "/v1", api_key="unused", max_retries=0)


def decoded(data: bytes) -> tuple[int, int, float]:
    """(sample rate, channels, seconds) of encoded audio, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.rate, stream.channels, samples / stream.rate


def envelope(response: httpx.Response, status: int, kind: str, provider: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["kind"], error["provider"]) == (kind, provider), error
    return error["message"]


def speak_via(url: str, **fields) -> httpx.Response:
    body = {"model": "piper", "voice": "alloy", "input": "Hello.", **fields}
    return httpx.post(url + "/v1/audio/speech", json=body, timeout=60)


def data_url(audio: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(audio).decode()


@pytest.fixture(scope="module")
def reference_seconds(client) -> float:
    wav = client.audio.speech.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="wav"
    )
    return decoded(wav.content)[2]


@pytest.mark.parametrize("fmt", [*RATES, "pcm"])
def test_every_format_decodes_back(client, reference_seconds, fmt):
    audio = client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format=fmt
    ).content
    if fmt == "pcm":
        rate, channels, seconds = PCM_RATE, 1, len(audio) / 2 / PCM_RATE
    else:
        rate, channels, seconds = decoded(audio)
    assert (rate, channels) == (RATES.get(fmt, PCM_RATE), 1)
    assert 3.0 < reference_seconds < 7.0
    assert abs(seconds - reference_seconds) < 0.1 * reference_seconds + 0.15, fmt


def test_round_trip_piper_edge_whisper(client):
    audio = client.audio.speech.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="mp3"
    ).content
    heard = client.audio.transcriptions.create(
        model="whisper-tiny.en", file=("speech.mp3", audio), response_format="text"
    )
    assert words_in_order(SENTENCE, heard) >= 0.8, heard


def test_first_bytes_arrive_before_the_synthesis_ends(client):
    start = time.monotonic()
    arrivals: list[float] = []
    with client.audio.speech.with_streaming_response.create(
        model="piper", voice="alloy", input=LONG, response_format="pcm"
    ) as response:
        for chunk in response.iter_bytes():
            if chunk:
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) >= 4
    assert arrivals[0] < arrivals[-1] / 3, (arrivals[0], arrivals[-1])


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def refused_before_the_body(url: str) -> bool:
    """Whether a speech request gets its 503 with its headers only, none of its body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/audio/speech HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        )
        return sock.recv(4096).startswith(b"HTTP/1.1 503")


def test_slot_contention_and_hang_up(edge, piper):
    """A synthesis holds the slot: a second one gets 503 + Retry-After (before its body
    is read) while the voice list still answers; hanging up stops Piper and frees the
    slot."""
    body = {"model": "piper", "voice": "alloy", "input": LONG * 4, "response_format": "wav"}
    stops = piper.output().count("synthesis stopped")
    with (
        httpx.Client(base_url=edge.url, timeout=30) as http,
        http.stream("POST", "/v1/audio/speech", json=body) as first,
    ):
        assert first.status_code == 200
        audio = first.iter_bytes()  # kept: dropping the iterator would close the stream
        next(audio)
        second = speak_via(edge.url)
        message = envelope(second, 503, "network", "aistack")
        assert "tts piper" in message and second.headers["Retry-After"] == "5"
        assert refused_before_the_body(edge.url)
        assert httpx.get(edge.url + "/v1/audio/voices").status_code == 200
    wait_for(lambda: piper.output().count("synthesis stopped") > stops)
    wait_for(lambda: speak_via(edge.url).status_code == 200)


def test_voice_list_goes_to_the_default_or_the_named_model(edge, vllm):
    voices = httpx.get(edge.url + "/v1/audio/voices").json()
    assert "en_US-joe-medium" in voices["voices"]
    # vLLM-Omni has no voice list: its 404 comes back, as the envelope's 400.
    answer = httpx.get(edge.url + f"/v1/audio/voices?model={QWEN}&lang=en")
    assert envelope(answer, 400, "malformed", "vllm") == "Not Found"
    assert relayed(vllm)[:2] == ("GET", f"/v1/audio/voices?model={QWEN}&lang=en")


async def test_bodies_and_headers_pass_through(edge, vllm):
    """Extension fields, spacing and key order reach the backend byte for byte; the
    backend's job gets an id of the edge's own; hop-by-hop headers stop at the edge both ways."""
    raw = (
        f'{{ "input":"Cloned voice.",  "model": "{QWEN}", "task_type":"Base",'
        f'"ref_audio": "{data_url(b"RIFF")}", "ref_text": "Hi \\u00e9", '
        '"instructions": "calm", "language": "English", "x_future": [1, {"a": null}]}'
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Request-ID": "tts-pass-1",
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "1",
        "Proxy-Authorization": "Basic eA==",
        "TE": "trailers",
        "X-End-To-End": "yes",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(edge.url + "/v1/audio/speech", data=raw, headers=headers) as r,
    ):
        assert (r.status, r.content_type) == (200, "audio/wav")
        assert await r.read() == direct(vllm, raw)
        assert r.headers["X-Request-ID"] == "tts-pass-1"
    method, path, got, body = relayed(vllm)
    assert (method, path, body) == ("POST", "/v1/audio/speech", raw)
    # The backend's job is named by the edge (a client's id could name another's job).
    assert got["X-Request-ID"] != "tts-pass-1" and len(got["X-Request-ID"]) == 24
    assert got["X-End-To-End"] == "yes"
    assert not {"X-Hop", "Proxy-Authorization", "TE"} & set(got)


async def test_an_upload_streams_through(edge, vllm):
    """A body that is not JSON (a voice upload, say) reaches the named backend unchanged
    (vLLM-Omni has no such route: it reads the body, then answers 404)."""
    form = aiohttp.FormData()
    form.add_field("name", "mine")
    form.add_field("audio", b"RIFF" + bytes(200_000), filename="mine.wav")
    async with (
        aiohttp.ClientSession() as http,
        http.post(edge.url + f"/v1/audio/voices?model={QWEN}", data=form) as r,
    ):
        assert r.status == 400
        sent_type = r.request_info.headers["Content-Type"]
        await r.read()  # a hang-up would keep the slot until the backend says it stopped
    method, path, got, body = relayed(vllm)
    assert (method, path, got["Content-Type"]) == (
        "POST",
        f"/v1/audio/voices?model={QWEN}",
        sent_type,
    )
    assert b'filename="mine.wav"' in body and body.count(b"\0") >= 200_000


async def test_a_large_upload_is_spooled_not_held(edge, vllm):
    """A 40 MB voice upload reaches the backend byte for byte, sent from the edge's
    temporary file: the edge's peak memory grows by a window, not by the upload (held
    whole, it grew by more than the upload), and no file is left open after."""
    upload = os.urandom(40 * 2**20)
    pid = edge.proc.pid
    files = open_files(pid)
    headers = {"Content-Type": "application/octet-stream"}
    with PeakGrowth(pid) as grown:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                edge.url + f"/v1/audio/voices?model={QWEN}", data=upload, headers=headers
            ) as r,
        ):
            assert r.status == 400  # vLLM-Omni's 404, once it has read the body
            await r.read()
    assert relayed(vllm)[3] == upload
    assert grown.mib < 16, grown.mib
    assert open_files(pid) <= files


def open_files(pid: int) -> set[str]:
    """The files (not sockets, pipes) process `pid` has open: a temporary file shows as
    `/tmp/#<inode> (deleted)`."""
    targets = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    return {target for target in targets if target.startswith("/")}


async def test_a_compressed_body_reaches_the_backend_plain(edge, vllm):
    """The edge reads a gzip body decoded (to bound it, issue 16): it passes it on plain,
    without the Content-Encoding that no longer holds."""
    raw = json.dumps({"model": QWEN, "input": "Packed.", "voice": "vivian"}).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(edge.url + "/v1/audio/speech", data=gzip.compress(raw), headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        assert await r.read() == direct(vllm, raw)
    _, _, got, body = relayed(vllm)
    assert body == raw and "Content-Encoding" not in got


def test_an_absolute_form_target_is_relayed(edge, vllm):
    """`POST http://host/v1/audio/speech` (absolute form, RFC 9112 §3.2.2) reaches the
    backend at its path; joining the whole target to the backend's URL was a 500."""
    body = json.dumps({"model": QWEN, "input": "Absolute.", "voice": "vivian"}).encode()
    host, port = edge.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {edge.url}/v1/audio/speech?x=1 HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert relayed(vllm)[:2] == ("POST", "/v1/audio/speech?x=1")


async def test_a_backend_that_breaks_off_cuts_the_answer(edge, vllm):
    body = {"model": QWEN, "input": "Broken off.", "voice": "vivian"}
    with cut_after(vllm, 1000):
        async with (
            aiohttp.ClientSession() as http,
            http.post(edge.url + "/v1/audio/speech", json=body) as r,
        ):
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
    wait_for(lambda: speak_via(edge.url).status_code == 200)


@pytest.mark.parametrize(
    ("content", "part"),
    [
        (b"{not json", "not valid JSON"),
        (b'["a list"]', "JSON object"),
        (b'{"model": 7, "input": "x"}', "model must be a string"),
        (b'{"model": "piper", "model": "x"}', "repeats a key"),
        (b'{"model": "tts-9", "input": "x"}', "unknown TTS model"),
    ],
)
def test_bad_bodies_are_malformed(edge, content, part):
    response = httpx.post(
        edge.url + "/v1/audio/speech", content=content, headers={"Content-Type": "application/json"}
    )
    assert part in envelope(response, 400, "malformed", "aistack")


@pytest.mark.parametrize(
    ("fields", "provider", "part"),
    [
        ({"voice": "no-such-voice"}, "Piper", "unknown voice"),
        ({"input": " "}, "Piper", "input is empty"),
        ({"model": QWEN, "voice": "vivian", "ref_text": "Hi."}, "vllm", "only valid for Base"),
    ],
)
def test_backend_errors_keep_their_message(edge, fields, provider, part):
    assert part in envelope(speak_via(edge.url, **fields), 400, "malformed", provider)


def test_asr_routes_stay_asr(edge):
    response = httpx.get(edge.url + "/v1/audio/transcriptions")
    assert "allowed: POST" in envelope(response, 405, "malformed", "aistack")


@pytest.mark.parametrize(
    "where", ["../private/secret.wav", "link.wav", "sub/secret.wav", "missing.wav", "."]
)
def test_ref_audio_outside_the_directory(edge, ref_dir, where):
    response = speak_via(edge.url, model=QWEN, ref_audio=f"{ref_dir}/{where}")
    assert "ref_audio" in envelope(response, 400, "malformed", "aistack")


def test_ref_audio_file_is_inlined(edge, vllm, ref_dir):
    """A file in the directory reaches the backend as a data: URL of its bytes, at any
    depth; every other field as it was."""
    clip = ref_dir / "voice.wav"
    fields = {"task_type": "Base", "ref_text": "Hello.", "extra": {"ref_audio": str(clip)}}
    assert speak_via(edge.url, model=QWEN, ref_audio=str(clip), **fields).status_code == 200
    got = json.loads(relayed(vllm)[3])
    for inlined in (got.pop("ref_audio"), got["extra"].pop("ref_audio")):
        header, _, payload = inlined.partition(",")
        assert header.startswith("data:audio/") and header.endswith(";base64")
        assert base64.b64decode(payload) == clip.read_bytes()
    assert got == {"model": QWEN, "voice": "alloy", "input": "Hello.", **fields, "extra": {}}


@pytest.mark.parametrize(
    ("ref_audio", "part"),
    [
        ("/etc/hostname", "outside"),
        ("/etc/host\0name", "can't be read"),
        ("voice.wav", "absolute path"),
        ("file:///etc/hostname", "file: URLs"),
        ("https://example.com/a.wav", "AISTACK_TTS_REF_AUDIO_URLS"),
        ("data:audio/wav;base64,%%%", "not valid base64"),
        ("data:audio/wav,RIFF", "must be base64"),
        ("data:audio/wav;base64,", "holds no audio"),
        (7, "must be a data: URL"),
    ],
)
def test_ref_audio_refused(edge, ref_audio, part):
    response = speak_via(edge.url, model=QWEN, ref_audio=ref_audio)
    assert part in envelope(response, 400, "malformed", "aistack")


def test_ref_audio_as_data_url_passes_as_is(edge, vllm):
    ref = data_url(b"RIFF" + bytes(range(256)))
    answer = speak_via(edge.url, model=QWEN, task_type="Base", ref_audio=ref)
    assert answer.status_code == 200, answer.text
    assert json.loads(relayed(vllm)[3])["ref_audio"] == ref


def test_ref_audio_nested_is_checked_too(edge):
    response = speak_via(edge.url, model=QWEN, voice={"ref_audio": "/etc/hostname"})
    assert "outside" in envelope(response, 400, "malformed", "aistack")


def test_ref_audio_policy_without_a_directory_or_past_the_size(ref_dir):
    closed = RefAudioPolicy(None, urls=True, max_bytes=100)
    with pytest.raises(AistackError, match="AISTACK_TTS_REF_AUDIO_DIR is unset"):
        closed.resolve(str(ref_dir / "voice.wav"))
    assert closed.resolve(data_url(b"RIFF")) == data_url(b"RIFF")
    assert closed.resolve("https://example.com/a.wav") == "https://example.com/a.wav"
    assert closed.resolve(None) is None
    with pytest.raises(AistackError, match="the limit is 2") as too_big:
        RefAudioPolicy(ref_dir, urls=False, max_bytes=2).resolve(str(ref_dir / "voice.wav"))
    assert too_big.value.status == 413


def test_upstream_down(module_services, tmp_path):
    """A backend that was up and went away is a 503 naming it; with one backend silent,
    a model nobody serves is a 503 too, not a 400."""
    silent = f"http://127.0.0.1:{free_port()}"
    with in_thread(FakeVllmOmni(QWEN)) as gone:
        edge = module_services.start(
            "aistack_edge",
            env={"AISTACK_TTS_BACKENDS": f"{gone.url},{silent}", "AISTACK_MODELS_CACHE_S": "60"},
        )
        assert speak_via(edge.url, model=QWEN, voice="vivian").status_code == 200
    message = envelope(speak_via(edge.url, model=QWEN, voice="vivian"), 503, "network", "vllm")
    assert "unreachable" in message
    message = envelope(speak_via(edge.url, model="piper"), 503, "network", "aistack")
    assert silent in message


def test_no_backend_at_all(module_services):
    edge = module_services.start("aistack_edge")
    envelope(speak_via(edge.url), 503, "network", "aistack")
    envelope(httpx.get(edge.url + "/v1/audio/voices"), 503, "network", "aistack")


# --- OpenAI's newer speech fields ------------------------------------------------------


def sse_events(lines) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]


def test_speech_as_sse_events(client, reference_seconds):
    """`stream_format: "sse"`: `speech.audio.delta` events of base64 audio, then one
    `speech.audio.done` with `usage` (OpenAI's CreateSpeechResponseStreamEvent)."""
    with client.audio.speech.with_streaming_response.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="pcm", stream_format="sse"
    ) as answer:
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(answer.iter_lines())
    *deltas, done = events
    assert len(deltas) >= 1 and {event["type"] for event in deltas} == {"speech.audio.delta"}
    pcm = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    seconds = len(pcm) / 2 / PCM_RATE
    assert abs(seconds - reference_seconds) < 0.1 * reference_seconds + 0.15
    assert done == {
        "type": "speech.audio.done",
        "usage": {"input_tokens": len(SENTENCE), "output_tokens": 0, "total_tokens": len(SENTENCE)},
    }


def test_speech_sse_in_wav_decodes_back(client, reference_seconds):
    with client.audio.speech.with_streaming_response.create(
        model="piper", voice="alloy", input=SENTENCE, response_format="wav", stream_format="sse"
    ) as answer:
        *deltas, done = sse_events(answer.iter_lines())
    wav = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    assert decoded(wav)[:2] == (RATES["wav"], 1) and done["type"] == "speech.audio.done"


def test_stream_format_is_not_relayed(client, vllm):
    """The backend sends plain audio: the events are the edge's, for every model."""
    with client.audio.speech.with_streaming_response.create(
        model=QWEN, voice="vivian", input="Hello.", stream_format="sse"
    ) as answer:
        *deltas, done = sse_events(answer.iter_lines())
    audio = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    sent = relayed(vllm)[3]
    assert "stream_format" not in json.loads(sent)
    assert audio == direct(vllm, sent) and done["usage"]["input_tokens"] == 6
    audio = client.audio.speech.create(
        model=QWEN, voice="vivian", input="Hello.", stream_format="audio"
    )
    sent = relayed(vllm)[3]
    assert "stream_format" not in json.loads(sent)
    assert audio.content == direct(vllm, sent)


def test_a_broken_sse_stream_ends_with_an_error_event(edge, vllm):
    body = {"model": QWEN, "voice": "vivian", "input": "Broken off.", "stream_format": "sse"}
    with (
        cut_after(vllm, 1000),
        httpx.stream("POST", edge.url + "/v1/audio/speech", json=body, timeout=30) as answer,
    ):
        events = sse_events(answer.iter_lines())
    *deltas, error = events
    assert {event["type"] for event in deltas} == {"speech.audio.delta"}
    whole = direct(vllm, relayed(vllm)[3])
    assert b"".join(base64.b64decode(event["audio"]) for event in deltas) == whole[:1000]
    assert error["type"] == "error" and error["error"]["kind"] == "network", error
    # The slot is kept until the backend's job is known stopped, which may come just
    # after the stream's end: the next test must not find it busy.
    wait_for(lambda: speak_via(edge.url).status_code == 200)


def test_an_unknown_stream_format_is_malformed(edge):
    message = envelope(speak_via(edge.url, stream_format="ogg"), 400, "malformed", "aistack")
    assert "stream_format" in message


def test_instructions_are_accepted_and_the_models_say_who_follows_them(client, edge, vllm):
    audio = client.audio.speech.create(
        model="piper", voice="alloy", input="Hello.", instructions="Whisper it, slowly."
    )
    assert decoded(audio.content)[2] > 0.3
    client.audio.speech.create(
        model=QWEN, voice="vivian", input="Hello.", instructions="Speak with great enthusiasm"
    )
    assert json.loads(relayed(vllm)[3])["instructions"] == "Speak with great enthusiasm"
    cards = {card["id"]: card for card in httpx.get(edge.url + "/v1/models").json()["data"]}
    assert cards["piper"]["supports_instructions"] is False
    assert cards[QWEN]["supports_instructions"] is True


# --- a client that stops reading ---------------------------------------------------------


def never_read_edge(module_services, piper, redis_server, key: str, write_timeout_s: float):
    return module_services.start(
        "aistack_edge",
        env={
            "AISTACK_TTS_BACKENDS": piper.url,
            "AISTACK_REDIS_URL": redis_server.url,
            "AISTACK_SLOT_KEY": key,
            "AISTACK_CLIENT_WRITE_TIMEOUT_S": str(write_timeout_s),
        },
    )


def long_speech() -> bytes:
    """About 75 s of WAV (some 3 MB): far more than the connection's buffers hold."""
    body = {"model": "piper", "voice": "alloy", "input": LONG * 3, "response_format": "wav"}
    return json.dumps(body).encode()


def test_a_client_that_never_reads_does_not_hold_the_slot(module_services, piper, redis_server):
    """The edge reads Piper's answer at Piper's pace into its outbox, whatever the
    client reads: the slot is free once Piper is done (Piper not stopped). On the old
    relay, which wrote at the client's pace, the slot stayed held."""
    key = "aistack:test-speech-never-read"
    edge = never_read_edge(module_services, piper, redis_server, key, 600)
    stops = piper.output().count("synthesis stopped")
    with never_reading(edge.url, "/v1/audio/speech", long_speech()):
        assert "tts piper" in asyncio.run(until_held(redis_server.url, key))
        asyncio.run(until_free(redis_server.url, key, limit_s=300))
        assert piper.output().count("synthesis stopped") == stops  # done, not stopped
    assert speak_via(edge.url).status_code == 200


def test_a_client_that_reads_nothing_for_the_write_timeout_is_cut_off(
    module_services, piper, redis_server
):
    """A client that reads nothing for AISTACK_CLIENT_WRITE_TIMEOUT_S is a hang-up: its
    connection is cut (the answer never ends) and the slot is free."""
    key = "aistack:test-speech-write-timeout"
    edge = never_read_edge(module_services, piper, redis_server, key, 3)
    with never_reading(edge.url, "/v1/audio/speech", long_speech()) as sock:
        asyncio.run(until_held(redis_server.url, key))
        received = cut_off(sock, limit_s=120)
        asyncio.run(until_free(redis_server.url, key, limit_s=120))
    assert not received.endswith(b"0\r\n\r\n")  # cut: the chunked answer has no end

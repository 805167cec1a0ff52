"""Parakeet through the edge: the official openai SDK → a real edge → asr-parakeet on the
tiny model. The words are meaningless; the shapes, the routing and the downgrade are real."""

import asyncio
import contextlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import openai
import pytest

from aistack_asr_parakeet.models import MODEL_ID
from aistack_testing.audio import repeat_wav
from aistack_testing.processes import Service, start_edge


@pytest.fixture(scope="module")
def client(edge: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=edge.url + "/v1", api_key="unused", max_retries=0)


async def test_models_list_parakeet_as_not_streaming(edge: Service) -> None:
    async with aiohttp.request("GET", edge.url + "/v1/models") as response:
        cards = {card["id"]: card for card in (await response.json())["data"]}
    assert cards[MODEL_ID]["supports_streaming"] is False
    assert cards[MODEL_ID]["supports_translate"] is False
    assert "de" in cards[MODEL_ID]["languages"]
    assert cards["auto"]["is_routing_alias"] is True


@pytest.mark.parametrize("model", ["parakeet", MODEL_ID, "auto"])
def test_verbose_json_with_word_times(
    client: openai.OpenAI, speech_wav: Path, long_speech: bytes, model: str
) -> None:
    result = client.audio.transcriptions.create(
        model=model,
        file=("long.wav", long_speech),
        language="de",  # a European hint: `auto` routes it to Parakeet
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "de"
    assert 25 < result.duration < 35
    assert result.segments and result.words
    assert result.text == " ".join(s.text for s in result.segments)
    times = [(w.start, w.end) for w in result.words]
    assert all(0 <= start <= end <= result.duration for start, end in times)
    assert times == sorted(times)
    assert result.words[-1].end > result.duration - 8  # the last window made it


def test_streaming_is_downgraded_to_one_delta_after_a_warning(
    client: openai.OpenAI, speech_wav: Path
) -> None:
    with speech_wav.open("rb") as f:
        events = list(client.audio.transcriptions.create(model="parakeet", file=f, stream=True))
    warning, delta, done = (event.model_dump() for event in events)
    assert warning["type"] == "warning" and warning["model"] == MODEL_ID
    assert delta["type"] == "transcript.text.delta"
    assert done["type"] == "transcript.text.done"
    assert delta["delta"] == done["text"] and done["text"]
    assert delta["segment"]["words"]
    assert 4 < done["duration"] < 6


async def test_the_warning_comes_as_soon_as_the_audio_is_accepted(
    edge: Service, long_speech: bytes
) -> None:
    """A client with an idle timeout hears from the edge at once, not after the whole
    transcription: the warning leaves once the backend has accepted the audio (its info
    event), well before the one delta."""
    form = aiohttp.FormData()
    form.add_field("file", long_speech, filename="long.wav")
    form.add_field("model", "parakeet")
    form.add_field("stream", "true")
    arrived: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.request("POST", edge.url + "/v1/audio/transcriptions", data=form) as r:
        assert r.status == 200
        async for line in r.content:
            if line.startswith(b"data: "):
                kind = json.loads(line[6:])["type"]
                arrived.append((loop.time() - started, kind))
    kinds = [kind for _, kind in arrived]
    assert kinds == ["warning", "transcript.text.delta", "transcript.text.done"]
    warned, delta = arrived[0][0], arrived[1][0]
    assert warned < delta / 3, arrived


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's translations endpoint
@pytest.mark.parametrize("endpoint", ["translations", "transcriptions"])
def test_translate_is_malformed(client: openai.OpenAI, speech_wav: Path, endpoint: str) -> None:
    with speech_wav.open("rb") as f, pytest.raises(openai.BadRequestError) as caught:
        if endpoint == "translations":
            client.audio.translations.create(model="parakeet", file=f)
        else:
            client.audio.transcriptions.create(
                model="parakeet", file=f, extra_body={"translate": "true"}
            )
    assert caught.value.status_code == 400
    assert caught.value.body["kind"] == "malformed"


def test_subtitle_cues_keep_the_spaces_between_words(
    client: openai.OpenAI, speech_wav: Path
) -> None:
    with speech_wav.open("rb") as f:
        result = client.audio.transcriptions.create(
            model="parakeet",
            file=f,
            response_format="verbose_json",
            extra_body={"segment_granularity": "subtitle"},
        )
    for cue in result.segments:
        assert len(cue.text) <= 70
        assert cue.end - cue.start <= 7
    cues = " ".join(cue.text.strip() for cue in result.segments)
    assert cues == " ".join(w.word for w in result.words)


@pytest.fixture
def one_window_edge(
    tiny_nemo: Path, start_parakeet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Service]]:
    """asr-parakeet with its default 600 s window (two minutes are one call into NeMo),
    and an edge in front of it."""
    logs = tmp_path_factory.mktemp("one-window")
    env = {"AISTACK_PARAKEET_MODEL_PATH": str(tiny_nemo), "AISTACK_PARAKEET_CPU_THREADS": "1"}
    backend = start_parakeet(logs / "parakeet.log", env)
    edge = start_edge(backend.url, logs / "edge.log", {"AISTACK_STOP_GRACE_S": "30"})
    yield backend, edge
    edge.stop()


async def test_a_hang_up_mid_window_frees_the_slot_only_once_parakeet_stopped(
    one_window_edge: tuple[Service, Service], speech: bytes, tmp_path: Path
) -> None:
    """20 times: a client hangs up while a two-minute window runs, and a new request comes
    at once. It is refused or waits; the backend's jobs never overlap, and each cancelled
    one stops within a step, not at the end of its window."""
    backend, edge = one_window_edge
    long_audio = repeat_wav_bytes(speech, tmp_path, 120)
    async with aiohttp.ClientSession() as session:
        assert await _post(session, edge.url, speech) == 200  # the model is loaded
        for _ in range(20):
            task = await _started(session, edge.url, backend.url, long_audio)
            await asyncio.sleep(0.2)
            task.cancel()  # the client hangs up mid-window
            with contextlib.suppress(asyncio.CancelledError):
                await task
            status = await _post(session, edge.url, speech)
            assert status in (200, 503)
        await _until_jobs(session, backend.url, running=False)
        assert await _post(session, edge.url, long_audio) == 200  # a whole window, for scale
    log = (await _get_once(backend.url + "/status"))["job_log"]
    jobs = sorted((job["started"], job["ended"]) for job in log if job["ended"])
    assert len(jobs) >= 22  # the first load, 20 hung up (the followers may be refused), one whole
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(jobs))
    whole_s = jobs[-1][1] - jobs[-1][0]
    hung_up = [end - start for start, end in jobs[1:-1] if end - start > 0.15]
    assert len(hung_up) >= 20
    print(
        f"\nParakeet: a whole window {whole_s:.2f} s; "
        f"hung up after 0.2 s: {max(hung_up):.2f} s at most"
    )
    assert max(hung_up) < 0.2 + min(1.0, whole_s / 2), (hung_up, whole_s)


async def _post(session: aiohttp.ClientSession, url: str, audio: bytes) -> int:
    form = aiohttp.FormData()
    form.add_field("file", audio, filename="a.wav")
    form.add_field("model", "parakeet")
    async with session.post(url + "/v1/audio/transcriptions", data=form) as response:
        await response.read()
        return response.status


async def _started(
    session: aiohttp.ClientSession, edge_url: str, backend_url: str, audio: bytes
) -> asyncio.Task[int]:
    """A transcription of `audio` running on the backend (sent again while the slot is
    busy: the edge holds it until the previous job has stopped)."""
    for _ in range(100):
        await _until_jobs(session, backend_url, running=False)
        task = asyncio.create_task(_post(session, edge_url, audio))
        for _ in range(3000):
            if task.done():  # refused: the slot was still held
                break
            if (await _get(session, backend_url + "/status"))["jobs"]:
                return task
            await asyncio.sleep(0.02)
    raise AssertionError("the transcription never started")


async def _until_jobs(session: aiohttp.ClientSession, backend_url: str, running: bool) -> None:
    for _ in range(3000):
        if bool((await _get(session, backend_url + "/status"))["jobs"]) is running:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the backend's jobs never became running={running}")


async def _get(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url) as response:
        return await response.json()


async def _get_once(url: str) -> dict:
    async with aiohttp.ClientSession() as session:
        return await _get(session, url)


def repeat_wav_bytes(wav: bytes, folder: Path, seconds: float) -> bytes:
    source = folder / "one.wav"
    source.write_bytes(wav)
    return repeat_wav(source, folder / "long.wav", seconds).read_bytes()

"""Background transcription jobs (`background=true`) through a real edge, in process (no
Redis), in front of the real asr-whisper with tiny.en: the lifecycle over plain HTTP and
the openai SDK's raw helpers, resumable events, cancel, the limits, and priority on the
one GPU slot (an interactive request during a job waits at most about one window)."""

import json
import time
from pathlib import Path

import httpx
import openai
import pytest

from aistack_testing.audio import repeat_wav
from aistack_testing.edge import envelope
from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import PASSAGE, speak, words_in_order

WINDOW_S = 10
MODEL = "whisper-tiny.en"
DEADLINE_S = 300  # generous: two cores shared by many tests


def _env(whisper, **extra: str) -> dict[str, str]:
    env = {
        "AISTACK_ASR_BACKENDS": whisper.url,
        "AISTACK_PROBE_TIMEOUT_S": "5",
        "AISTACK_JOBS_WINDOW_S": str(WINDOW_S),
    }
    return env | {f"AISTACK_{name.upper()}": value for name, value in extra.items()}


@pytest.fixture(scope="module")
def edge(module_services, whisper):
    """An edge with no Redis: jobs in process."""
    return module_services.start("aistack_edge", env=_env(whisper))


@pytest.fixture(scope="module")
def passage(tmp_path_factory) -> Path:
    """About 45 s of varied speech: five windows."""
    return speak(PASSAGE, tmp_path_factory.mktemp("jobs") / "passage.wav")


@pytest.fixture(scope="module")
def long_passage(passage, tmp_path_factory) -> Path:
    """Two minutes: a job that runs for a while."""
    return repeat_wav(passage, tmp_path_factory.mktemp("jobs-long") / "long.wav", 120)


def _submit(url: str, wav: Path, **fields: str) -> httpx.Response:
    data = {"model": MODEL, "background": "true", **fields}
    files = {"file": (wav.name, wav.read_bytes(), "audio/wav")}
    return httpx.post(url + "/v1/audio/transcriptions", data=data, files=files, timeout=120)


def _job(url: str, job_id: str, **params: str) -> dict:
    r = httpx.get(f"{url}/v1/audio/transcriptions/{job_id}", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _until(url: str, job_id: str, done, limit_s: float = DEADLINE_S) -> dict:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        job = _job(url, job_id)
        if done(job):
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} not there within {limit_s} s: {job}")


def _finished(job: dict) -> bool:
    return job["status"] in ("completed", "failed", "cancelled")


def _events(url: str, job_id: str, starting_after: int = -1) -> list[tuple[int, dict]]:
    """The job's SSE events after `starting_after`, to the stream's end."""
    events = []
    with httpx.stream(
        "GET",
        f"{url}/v1/audio/transcriptions/{job_id}/events",
        params={"starting_after": str(starting_after)},
        timeout=DEADLINE_S,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        index = None
        for line in r.iter_lines():
            if line.startswith("id: "):
                index = int(line[4:])
            elif line.startswith("data: "):
                events.append((index, json.loads(line[6:])))
    return events


def _idle(whisper_url: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if httpx.get(whisper_url + "/status", timeout=10).json()["jobs"] == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"the backend still runs a job {limit_s} s on")


def test_a_job_runs_to_its_result_in_every_format(edge, passage):
    r = _submit(edge.url, passage, response_format="verbose_json")
    assert r.status_code == 202, r.text
    job = r.json()
    assert set(job) >= {"id", "object", "status", "model", "created_at", "progress", "error"}
    assert job["object"] == "transcription.job" and job["model"] == MODEL
    assert job["status"] in ("queued", "in_progress") and job["error"] is None
    assert abs(time.time() - job["created_at"]) < 120
    total = job["progress"]["seconds_total"]
    assert 35 < total < 60, total

    done = _until(edge.url, job["id"], _finished)
    assert done["status"] == "completed", done
    assert done["progress"] == {"seconds_done": total, "seconds_total": total}
    result = done["result"]
    assert words_in_order(PASSAGE, result["text"]) > 0.9, result["text"]
    assert result["duration"] == pytest.approx(total, abs=0.01)
    ends = [segment["end"] for segment in result["segments"]]
    assert ends == sorted(ends) and ends[-1] > total - WINDOW_S  # times run across windows

    srt = _job(edge.url, job["id"], response_format="srt")["result"]
    assert srt.startswith("1\n00:00:0") and "-->" in srt
    assert _job(edge.url, job["id"], response_format="text")["result"] == result["text"]
    assert _job(edge.url, job["id"], response_format="json")["result"]["text"] == result["text"]

    events = _events(edge.url, job["id"])
    assert [index for index, _ in events] == list(range(len(events)))
    *deltas, last = events
    assert all(e["type"] == "transcript.text.delta" for _, e in deltas)
    assert last[1]["type"] == "transcript.text.done"
    assert "".join(e["delta"] for _, e in deltas) == last[1]["text"] == result["text"]
    # Resumed after the third event: the rest, the same.
    assert _events(edge.url, job["id"], starting_after=2) == events[3:]


def test_the_sdk_raw_helpers_drive_a_job(edge, speech_wav):
    client = openai.OpenAI(base_url=edge.url + "/v1", api_key="unused", max_retries=0)
    answer = client.post(
        "/audio/transcriptions",
        cast_to=httpx.Response,
        body={"model": MODEL, "background": "true"},
        files=[("file", ("speech.wav", speech_wav.read_bytes(), "audio/wav"))],
        options={"headers": {"Content-Type": "multipart/form-data"}},
    )
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    deadline = time.monotonic() + DEADLINE_S
    job = client.get(f"/audio/transcriptions/{job_id}", cast_to=object)
    while job["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(f"/audio/transcriptions/{job_id}", cast_to=object)
    assert job["status"] == "completed", job
    assert words_in_order(SENTENCE, job["result"]["text"]) > 0.8
    with pytest.raises(openai.NotFoundError) as raised:
        client.get("/audio/transcriptions/transcr_job_nope", cast_to=object)
    assert raised.value.body["kind"] == "malformed"  # the SDK gives the envelope's error


def test_a_cancel_stops_the_job_and_its_backend_work(edge, whisper, long_passage):
    job = _submit(edge.url, long_passage).json()
    _until(edge.url, job["id"], lambda j: j["progress"]["seconds_done"] > 0)
    r = httpx.post(f"{edge.url}/v1/audio/transcriptions/{job['id']}/cancel", timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["error"]["kind"] == "cancelled"
    _idle(whisper.url)
    assert _job(edge.url, job["id"])["status"] == "cancelled"
    assert _events(edge.url, job["id"])[-1][1]["error"]["kind"] == "cancelled"


@pytest.mark.parametrize(
    "path",
    ["/v1/audio/transcriptions/transcr_job_x", "/v1/audio/transcriptions/transcr_job_x/events"],
)
def test_an_unknown_job_is_404(edge, path):
    r = httpx.get(edge.url + path, timeout=30)
    assert r.status_code == 404
    assert "no transcription job" in envelope(r.content, "malformed")["message"]


def test_an_unknown_job_cannot_be_cancelled(edge):
    r = httpx.post(edge.url + "/v1/audio/transcriptions/transcr_job_x/cancel", timeout=30)
    assert r.status_code == 404
    envelope(r.content, "malformed")


def test_bad_job_requests_are_400(edge, speech_wav, tmp_path):
    r = _submit(edge.url, speech_wav, stream="true")
    assert r.status_code == 400 and "events" in envelope(r.content, "malformed")["message"]
    noise = tmp_path / "noise.wav"
    noise.write_bytes(b"RIFF not audio at all" * 100)
    r = _submit(edge.url, noise)
    assert r.status_code == 400
    assert "could not be decoded" in envelope(r.content, "malformed")["message"]
    job = _submit(edge.url, speech_wav).json()
    r = httpx.get(
        f"{edge.url}/v1/audio/transcriptions/{job['id']}", params={"response_format": "x"}
    )
    assert r.status_code == 400 and "response_format" in envelope(r.content)["message"]
    r = httpx.get(
        f"{edge.url}/v1/audio/transcriptions/{job['id']}/events", params={"starting_after": "a"}
    )
    assert r.status_code == 400
    _until(edge.url, job["id"], _finished)


def test_the_limits_refuse_with_overflow(services, whisper, passage, long_passage):
    edge = services.start(
        "aistack_edge", env=_env(whisper, jobs_max_queued="1", jobs_max_spool_mb="3")
    )
    first = _submit(edge.url, passage)
    assert first.status_code == 202
    r = _submit(edge.url, passage)
    assert r.status_code == 413
    assert "AISTACK_JOBS_MAX_QUEUED" in envelope(r.content, "overflow")["message"]
    httpx.post(f"{edge.url}/v1/audio/transcriptions/{first.json()['id']}/cancel", timeout=30)
    r = _submit(edge.url, long_passage)  # 120 s: 3.7 MiB of PCM
    assert r.status_code == 413
    assert "MiB" in envelope(r.content, "overflow")["message"]

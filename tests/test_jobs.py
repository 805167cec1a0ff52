"""Background transcription jobs (`background=true`) through a real edge, in process (no
Redis), in front of the real asr-whisper with tiny.en: the lifecycle over plain HTTP and
the openai SDK's raw helpers, resumable events, cancel, the limits, and priority on the
one GPU slot (an interactive request during a job waits at most about one window)."""

import itertools
import json
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from aistack_testing.audio import repeat_wav
from aistack_testing.edge import envelope
from aistack_testing.jobs import MODEL, finished, submit, until
from aistack_testing.jobs import job as job_of
from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import PASSAGE, speak, words_in_order

WINDOW_S = 10
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


SHORT = ". ".join(PASSAGE.split(". ")[:4]) + "."
"""About 20 s of speech once spoken: two or three windows."""


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> Path:
    return speak(SHORT, tmp_path_factory.mktemp("jobs-short") / "short.wav")


@pytest.fixture(scope="module")
def passage(tmp_path_factory) -> Path:
    """About 40 s of varied speech."""
    return speak(PASSAGE, tmp_path_factory.mktemp("jobs") / "passage.wav")


@pytest.fixture(scope="module")
def long_passage(passage, tmp_path_factory) -> Path:
    """Two minutes: a job that runs for a while."""
    return repeat_wav(passage, tmp_path_factory.mktemp("jobs-long") / "long.wav", 120)


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


def _idle(whisper_url: str, limit_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if httpx.get(whisper_url + "/status", timeout=10).json()["jobs"] == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"the backend still runs a job {limit_s} s on")


def test_a_job_runs_to_its_result_in_every_format(edge, short):
    r = submit(edge.url, short, response_format="verbose_json")
    assert r.status_code == 202, r.text
    job = r.json()
    assert set(job) >= {"id", "object", "status", "model", "created_at", "progress", "error"}
    assert job["object"] == "transcription.job" and job["model"] == MODEL
    assert job["status"] in ("queued", "in_progress") and job["error"] is None
    assert abs(time.time() - job["created_at"]) < 120
    total = job["progress"]["seconds_total"]
    assert 15 < total < 30, total

    done = until(edge.url, job["id"], finished)
    assert done["status"] == "completed", done
    assert done["progress"] == {"seconds_done": total, "seconds_total": total}
    result = done["result"]
    assert words_in_order(SHORT, result["text"]) > 0.9, result["text"]
    assert result["duration"] == pytest.approx(total, abs=0.01)
    ends = [segment["end"] for segment in result["segments"]]
    assert ends == sorted(ends) and ends[-1] > total - WINDOW_S  # times run across windows

    srt = job_of(edge.url, job["id"], response_format="srt")["result"]
    assert srt.startswith("1\n00:00:0") and "-->" in srt
    assert job_of(edge.url, job["id"], response_format="text")["result"] == result["text"]
    assert job_of(edge.url, job["id"], response_format="json")["result"]["text"] == result["text"]

    events = _events(edge.url, job["id"])
    assert [index for index, _ in events] == list(range(len(events)))
    *deltas, last = events
    assert all(e["type"] == "transcript.text.delta" for _, e in deltas)
    assert last[1]["type"] == "transcript.text.done"
    assert "".join(e["delta"] for _, e in deltas) == last[1]["text"] == result["text"]
    # Resumed after the second event: the rest, the same.
    assert _events(edge.url, job["id"], starting_after=1) == events[2:]


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
    job = submit(edge.url, long_passage).json()
    until(edge.url, job["id"], lambda j: j["progress"]["seconds_done"] > 0)
    r = httpx.post(f"{edge.url}/v1/audio/transcriptions/{job['id']}/cancel", timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["error"]["kind"] == "cancelled"
    _idle(whisper.url)
    assert job_of(edge.url, job["id"])["status"] == "cancelled"
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
    r = submit(edge.url, speech_wav, stream="true")
    assert r.status_code == 400 and "events" in envelope(r.content, "malformed")["message"]
    noise = tmp_path / "noise.wav"
    noise.write_bytes(b"RIFF not audio at all" * 100)
    r = submit(edge.url, noise)
    assert r.status_code == 400
    assert "could not be decoded" in envelope(r.content, "malformed")["message"]
    job = submit(edge.url, speech_wav).json()
    r = httpx.get(
        f"{edge.url}/v1/audio/transcriptions/{job['id']}", params={"response_format": "x"}
    )
    assert r.status_code == 400 and "response_format" in envelope(r.content)["message"]
    r = httpx.get(
        f"{edge.url}/v1/audio/transcriptions/{job['id']}/events", params={"starting_after": "a"}
    )
    assert r.status_code == 400
    httpx.post(f"{edge.url}/v1/audio/transcriptions/{job['id']}/cancel", timeout=30)


def test_the_limits_refuse_with_overflow(services, whisper, passage, long_passage):
    edge = services.start(
        "aistack_edge", env=_env(whisper, jobs_max_queued="1", jobs_max_spool_mb="3")
    )
    first = submit(edge.url, passage)
    assert first.status_code == 202
    r = submit(edge.url, passage)
    assert r.status_code == 413
    assert "AISTACK_JOBS_MAX_QUEUED" in envelope(r.content, "overflow")["message"]
    httpx.post(f"{edge.url}/v1/audio/transcriptions/{first.json()['id']}/cancel", timeout=30)
    r = submit(edge.url, long_passage)  # 120 s: 3.7 MiB of PCM
    assert r.status_code == 413
    assert "MiB" in envelope(r.content, "overflow")["message"]


def _lane_wait(url: str, lane: str) -> tuple[float, float]:
    """aistack_slot_lane_wait_seconds of `lane`: (count, sum)."""
    text = httpx.get(url + "/metrics", timeout=30).text
    found = {}
    for line in text.splitlines():
        for part in ("count", "sum"):
            if line.startswith(f'aistack_slot_lane_wait_seconds_{part}{{lane="{lane}"}}'):
                found[part] = float(line.rsplit(" ", 1)[1])
    return found.get("count", 0.0), found.get("sum", 0.0)


class Progress(threading.Thread):
    """The times at which a job's progress moved on: a window's end each."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.job_id = url, job_id
        self.moves: list[tuple[float, float]] = []  # (monotonic time, seconds_done)
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        last = 0.0
        while not self.stop.is_set():
            job = job_of(self.url, self.job_id)
            done = job["progress"]["seconds_done"]
            assert done >= last, "a job's progress never goes back"
            if done > last:
                self.moves.append((time.monotonic(), done))
                last = done
            if finished(job):
                return
            time.sleep(0.05)

    def windows(self) -> int:
        return len(self.moves)

    def until(self, windows: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while self.windows() < windows and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.windows() >= windows, self.moves


def test_an_interactive_request_waits_at_most_one_window_of_a_job(
    edge, whisper, long_passage, speech_wav
):
    """A 5 s transcription arrives while a job runs: it is answered (not 503), having
    waited for the slot no longer than one of the job's windows takes; the job then
    goes on from its checkpoint."""
    job = submit(edge.url, long_passage).json()
    progress = Progress(edge.url, job["id"])
    progress.until(2)
    count, waited = _lane_wait(edge.url, "interactive")
    files = {"file": ("speech.wav", speech_wav.read_bytes(), "audio/wav")}
    r = httpx.post(
        edge.url + "/v1/audio/transcriptions", data={"model": MODEL}, files=files,
        timeout=DEADLINE_S,
    )  # fmt: skip
    answered = time.monotonic()
    assert r.status_code == 200, r.text
    assert words_in_order(SENTENCE, r.json()["text"]) > 0.8
    count_after, waited_after = _lane_wait(edge.url, "interactive")
    assert count_after == count + 1
    wait_s = waited_after - waited
    progress.until(progress.windows() + 1)  # the job goes on
    httpx.post(f"{edge.url}/v1/audio/transcriptions/{job['id']}/cancel", timeout=30)
    progress.stop.set()
    times = [at for at, _ in progress.moves]
    # Each window's time (from one's end to the next's), but for the one the interactive
    # request ran in the middle of.
    windows = [b - a for a, b in itertools.pairwise(times) if not a < answered <= b]
    print(f"interactive slot wait {wait_s:.2f} s; job windows {[round(w, 2) for w in windows]} s")
    assert wait_s <= max(windows) * 1.25 + 3.0, (wait_s, windows)
    assert _lane_wait(edge.url, "background")[0] >= 3
    _idle(whisper.url)

"""Background jobs in Redis: a job outlives its edge (SIGKILLed mid-job, another edge
goes on from the last finished window, with the same text as a run without the kill),
and edge replicas on one Redis share one queue, each job run to its end once, with a
replica killed on the way."""

import re
import uuid
from pathlib import Path

import pytest

from aistack_testing.jobs import submit, until
from aistack_testing.speech import PASSAGE, speak, words_in_order, words_of

SHORT = ". ".join(PASSAGE.split(". ")[:4]) + "."


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> Path:
    """About 20 s of speech: four or five windows of 5 s."""
    return speak(SHORT, tmp_path_factory.mktemp("durable") / "short.wav")


@pytest.fixture
def env(whisper, redis_server, tmp_path) -> dict[str, str]:
    """Replicas' settings: one Redis, keys of this test's own, one shared jobs directory."""
    key = f"aistack:test-{uuid.uuid4().hex[:8]}"
    (tmp_path / "jobs").mkdir()
    return {
        "AISTACK_ASR_BACKENDS": whisper.url,
        "AISTACK_REDIS_URL": redis_server.url,
        "AISTACK_PROBE_TIMEOUT_S": "5",
        "AISTACK_SLOT_KEY": key + ":slot",
        "AISTACK_SLOT_TTL_MS": "3000",
        "AISTACK_JOBS_KEY": key + ":jobs",
        "AISTACK_JOBS_DIR": str(tmp_path / "jobs"),
        "AISTACK_JOBS_WINDOW_S": "5",
        "AISTACK_JOBS_CLAIM_AFTER_S": "2",
    }


def _submitted(url: str, wav: Path) -> str:
    r = submit(url, wav)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _windows_run(job_id: str, *edges) -> int:
    """How many windows of the job the edges transcribed to their end (a window whose
    workload found the GPU busy, and was tried again, counts once)."""
    pattern = re.compile(rf"job {job_id}: transcribed to ")
    return sum(len(pattern.findall(edge.output())) for edge in edges)


def test_a_job_outlives_its_edge_killed_mid_job(services, env, short):
    first = services.start("aistack_edge", env=env)
    baseline_id = _submitted(first.url, short)
    baseline = until(first.url, baseline_id, lambda j: j["status"] == "completed")
    windows = _windows_run(baseline_id, first)
    assert windows >= 4, windows

    job_id = _submitted(first.url, short)
    total = until(first.url, job_id, lambda j: j["progress"]["seconds_done"] > 0)
    assert total["progress"]["seconds_done"] < total["progress"]["seconds_total"]
    first.kill()
    second = services.start("aistack_edge", env=env)
    done = until(second.url, job_id, lambda j: j["status"] in ("completed", "failed"))
    assert done["status"] == "completed", done
    assert "resumed at" in second.output()

    expected, heard = baseline["result"]["text"], done["result"]["text"]
    assert words_in_order(expected, heard) >= 0.99, (expected, heard)
    assert abs(len(words_of(heard)) - len(words_of(expected))) <= len(words_of(expected)) / 100
    redone = _windows_run(job_id, first, second) - windows
    assert redone <= 1, redone  # at most the window the kill cut short


def test_replicas_share_one_queue_and_run_each_job_once(services, env, speech_wav):
    replicas = [services.start("aistack_edge", env=env) for _ in range(2)]
    jobs = [_submitted(replicas[i % 2].url, speech_wav) for i in range(4)]
    # A replica dies once the first job has begun: its job is taken over, none is lost.
    until(replicas[0].url, jobs[0], lambda j: j["status"] != "queued")
    replicas[1].kill()
    replicas.append(services.start("aistack_edge", env=env))
    for job_id in jobs:
        done = until(replicas[0].url, job_id, lambda j: j["status"] in ("completed", "failed"))
        assert done["status"] == "completed", done
        assert words_in_order("the quick brown fox", done["result"]["text"]) > 0.7
    logs = [replica.output() for replica in replicas]
    for job_id in jobs:
        ended = sum(log.count(f"job {job_id} completed") for log in logs)
        assert ended == 1, (job_id, ended)  # run to its end once, by one replica
        assert _windows_run(job_id, *replicas) <= 2  # its one window, redone at most once

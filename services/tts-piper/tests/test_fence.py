"""Fencing tokens on the service shell: a job under an older lease than one already
accepted is refused before any work (the edge sends the token with every job)."""

import httpx

from aistack_contract.jobs import FENCE_HEADER
from aistack_testing.processes import Service

BODY = {"model": "piper", "voice": "alloy", "input": "Hello.", "response_format": "pcm"}


def speak(piper: Service, fence: int | None) -> httpx.Response:
    headers = {} if fence is None else {FENCE_HEADER: str(fence)}
    return httpx.post(piper.url + "/v1/audio/speech", json=BODY, headers=headers, timeout=30)


def test_a_job_older_than_the_newest_fence_is_refused(piper: Service) -> None:
    newest = 2**52  # above any clock-seeded token the other tests' calls could carry
    assert speak(piper, newest).status_code == 200
    assert speak(piper, newest).status_code == 200  # the same holder: its next job
    stale = speak(piper, newest - 1)
    assert stale.status_code == 503
    error = stale.json()["error"]
    assert error["kind"] == "network" and "taken over" in error["message"]
    assert "fencing token" in piper.output()
    assert speak(piper, None).status_code == 200  # a direct caller has no token
    assert speak(piper, newest + 1).status_code == 200


def test_a_fence_that_is_not_a_number_is_malformed(piper: Service) -> None:
    answer = httpx.post(
        piper.url + "/v1/audio/speech", json=BODY, headers={FENCE_HEADER: "x"}, timeout=30
    )
    assert answer.status_code == 400
    assert FENCE_HEADER in answer.json()["error"]["message"]

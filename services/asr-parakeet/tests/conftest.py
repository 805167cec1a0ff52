"""A tiny Parakeet model built once per session, real asr-parakeet processes, real speech."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aistack_asr_parakeet import tiny_model
from aistack_asr_parakeet.models import MODEL_ID
from aistack_testing.asr_contract import Engine, edge  # noqa: F401 - edge: a fixture
from aistack_testing.audio import repeat_wav
from aistack_testing.processes import Service, start_module

# Tiny windows, so that half a minute of speech takes several of them.
LONG_FORM = {
    "AISTACK_PARAKEET_WINDOW_SEC": "8",
    "AISTACK_PARAKEET_OVERLAP_SEC": "2",
    "AISTACK_PARAKEET_MIN_LAST_CHUNK_SEC": "3",
    "AISTACK_PARAKEET_LOCAL_ATTENTION_AFTER_SEC": "6",
    "AISTACK_PARAKEET_LOCAL_ATTENTION_CONTEXT": "[16, 16]",
    "AISTACK_PARAKEET_CPU_THREADS": "1",
}


def _start(log: Path, env: dict[str, str]) -> Service:
    return start_module("aistack_asr_parakeet", log, env)


@pytest.fixture(scope="session")
def long_form() -> dict[str, str]:
    """The long-form settings of the `parakeet` service."""
    return LONG_FORM


@pytest.fixture
def start_parakeet() -> Iterator[Callable[[Path, dict[str, str]], Service]]:
    """Start asr-parakeet processes with some environment; they stop after the test."""
    started: list[Service] = []

    def start(log: Path, env: dict[str, str]) -> Service:
        started.append(_start(log, env))
        return started[-1]

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def tiny_nemo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Parakeet TDT `.nemo` file of the real architecture (about 700 KB)."""
    return tiny_model.build(tmp_path_factory.mktemp("model") / "tiny-parakeet.nemo")


@pytest.fixture(scope="session")
def keep_alive() -> float:
    """The `parakeet` service's keep-alive, in seconds."""
    return 2.0


@pytest.fixture(scope="session")
def parakeet(
    tiny_nemo: Path, keep_alive: float, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """asr-parakeet on the tiny model: tiny long-form windows, a 2-minute cap, `keep_alive`."""
    env = {
        "AISTACK_PARAKEET_MODEL_PATH": str(tiny_nemo),
        "AISTACK_MAX_AUDIO_SEC": "120",
        "AISTACK_MODEL_KEEP_ALIVE_SEC": str(keep_alive),
        **LONG_FORM,
    }
    service = _start(tmp_path_factory.mktemp("parakeet") / "service.log", env)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def long_speech(speech_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About 30 s of speech: several windows."""
    return repeat_wav(speech_wav, tmp_path_factory.mktemp("long") / "long.wav", 28).read_bytes()


@pytest.fixture(scope="session")
def asr_engine(
    parakeet: Service, speech: bytes, speech_wav: Path, tmp_path_factory: pytest.TempPathFactory
) -> Engine:
    """asr-parakeet for the shared contract suite (aistack_testing.asr_contract): its
    keep-alive and cap are the `parakeet` service's."""
    minute = repeat_wav(speech_wav, tmp_path_factory.mktemp("contract") / "long.wav", 100)
    return Engine(
        service=parakeet,
        strict=parakeet,
        model=MODEL_ID,
        provider="Parakeet",
        speech=speech,
        long_speech=minute.read_bytes(),
        keep_alive=2.0,
        cap_s=120.0,
    )

"""Real asr-whisper processes and real speech for the service's tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from aistack_testing import audio
from aistack_testing.asr_contract import Engine
from aistack_testing.audio import repeat_wav
from aistack_testing.processes import Service, start_module
from aistack_testing.speech import PASSAGE, speak


def _start(log: Path, env: dict[str, str]) -> Service:
    return start_module("aistack_asr_whisper", log, env)


@pytest.fixture(scope="session")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """asr-whisper with the default keep-alive and a 10-minute audio cap."""
    service = _start(
        tmp_path_factory.mktemp("whisper") / "service.log", {"AISTACK_MAX_AUDIO_SEC": "600"}
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def strict_keep_alive() -> float:
    """whisper_strict's keep-alive, in seconds."""
    return 1.0


@pytest.fixture(scope="session")
def whisper_strict(
    tmp_path_factory: pytest.TempPathFactory, strict_keep_alive: float
) -> Iterator[Service]:
    """asr-whisper with a `strict_keep_alive` keep-alive and a 60 s audio cap."""
    env = {"AISTACK_MODEL_KEEP_ALIVE_SEC": str(strict_keep_alive), "AISTACK_MAX_AUDIO_SEC": "60"}
    service = _start(tmp_path_factory.mktemp("whisper-strict") / "service.log", env)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def passage_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Piper saying PASSAGE once, about 45 s."""
    return speak(PASSAGE, tmp_path_factory.mktemp("passage") / "passage.wav")


@pytest.fixture(scope="session")
def long_speech(passage_wav: Path) -> bytes:
    """About 150 s of speech: many seconds of work for tiny.en on two cores."""
    return repeat_wav(passage_wav, passage_wav.with_name("long.wav"), 150).read_bytes()


@pytest.fixture(scope="session")
def silence() -> bytes:
    """One second of silence: the VAD leaves nothing, so it only loads the model."""
    return audio.silence(1.0)


@pytest.fixture(scope="session")
def asr_engine(
    whisper: Service,
    whisper_strict: Service,
    speech: bytes,
    long_speech: bytes,
    strict_keep_alive: float,
) -> Engine:
    """asr-whisper for the shared contract suite (aistack_testing.asr_contract)."""
    return Engine(
        service=whisper,
        strict=whisper_strict,
        model="whisper-tiny.en",
        provider="Faster-Whisper",
        speech=speech,
        long_speech=long_speech,
        keep_alive=strict_keep_alive,
        cap_s=60.0,
    )

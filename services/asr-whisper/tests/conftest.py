"""Real asr-whisper processes and real speech for the service's tests."""

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from aistack_testing.audio import repeat_wav
from aistack_testing.processes import Service, free_port, start_service
from aistack_testing.speech import PASSAGE, speak


def _start(log: Path, env: dict[str, str]) -> Service:
    port = free_port()
    return start_service(["-m", "aistack_asr_whisper", "--port", str(port)], port, log, env)


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
def speech(speech_wav: Path) -> bytes:
    """About 5 s of Piper saying SENTENCE, as a WAV file's bytes."""
    return speech_wav.read_bytes()


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
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(bytes(32_000))
    return out.getvalue()

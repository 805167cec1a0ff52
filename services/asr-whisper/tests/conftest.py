"""Real asr-whisper processes and real speech for the service's tests."""

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from aistack_testing.audio import repeat_wav
from aistack_testing.processes import Service, free_port, start_service
from aistack_testing.speech import speak


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


# Varied sentences: repeating one short sentence makes Whisper's output compress too
# well, and its temperature fallback then spends many seconds on each window.
PASSAGE = (
    "Every morning the old baker opened his shop before the sun came up. "
    "He mixed flour, water and salt in a wooden bowl that belonged to his grandmother. "
    "Children stopped by the window on their way to school to watch the bread rise. "
    "In winter the trains were often late, so the station master kept a kettle on the stove. "
    "Seven boats left the harbour at noon, carrying apples, copper wire and letters. "
    "The museum closed early on Thursdays because the heating system needed repairs. "
    "A young violinist practised scales in the attic until her neighbours knew every note. "
    "Nobody could explain why the garden clock always ran eleven minutes fast. "
    "The river flooded twice that spring, and the bridge was painted a bright shade of green."
)


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About 150 s of speech: many seconds of work for tiny.en on two cores."""
    folder = tmp_path_factory.mktemp("long")
    passage = speak(PASSAGE, folder / "passage.wav")
    return repeat_wav(passage, folder / "long.wav", 150).read_bytes()


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

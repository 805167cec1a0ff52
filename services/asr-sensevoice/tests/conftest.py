"""A tiny SenseVoice + fsmn-vad pair built once per session, real speech, real service processes."""

import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aistack_asr_sensevoice.tiny import build_pair
from aistack_testing.asr_contract import Engine, edge  # noqa: F401 - edge: a fixture
from aistack_testing.processes import Service, start_module
from aistack_testing.speech import speak

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "It was a sunny day in the park.",
    "Please call me back when you are ready.",
)
PAUSE_S = 2.5
"""Silence between sentences: longer than the VAD's 2 s end-of-speech wait for short speech."""


@dataclass(frozen=True)
class Speech:
    """A WAV file's bytes and where, in seconds, its sentences are spoken."""

    data: bytes
    spoken: list[tuple[float, float]]

    @property
    def duration(self) -> float:
        return self.spoken[-1][1] + PAUSE_S


@dataclass(frozen=True)
class TinyModels:
    model_dir: Path
    vad_dir: Path

    def env(self) -> dict[str, str]:
        return {
            "AISTACK_SENSEVOICE_MODEL_DIR": str(self.model_dir),
            "AISTACK_SENSEVOICE_VAD_DIR": str(self.vad_dir),
        }


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return TinyModels(*build_pair(tmp_path_factory.mktemp("models")))


def _sentences_with_pauses(texts: list[str], workdir: Path) -> Speech:
    """Piper speaking `texts`, each after PAUSE_S of silence, then PAUSE_S more."""
    voices: dict[str, bytes] = {}
    frames, spoken, at = [], [], 0.0
    for text in texts:
        if text not in voices:
            with wave.open(str(speak(text, workdir / f"{len(voices)}.wav")), "rb") as wav:
                params = wav.getparams()
                voices[text] = wav.readframes(params.nframes)
        pause = bytes(2 * int(PAUSE_S * params.framerate))
        frames += [pause, voices[text]]
        at += PAUSE_S
        spoken.append((at, at + len(voices[text]) / 2 / params.framerate))
        at = spoken[-1][1]
    out = workdir / "speech.wav"
    with wave.open(str(out), "wb") as wav:
        wav.setparams(params)
        wav.writeframes(b"".join([*frames, pause]))
    return Speech(out.read_bytes(), spoken)


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    """Three sentences with pauses between them: three VAD chunks."""
    return _sentences_with_pauses(list(SENTENCES), tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    """About five minutes of sentences and pauses: seconds of work, one chunk at a time."""
    return _sentences_with_pauses(list(SENTENCES) * 24, tmp_path_factory.mktemp("long"))


def _start(log: Path, env: dict[str, str]) -> Service:
    return start_module("aistack_asr_sensevoice", log, env)


@pytest.fixture(scope="session")
def keep_alive() -> float:
    """The `sensevoice` service's keep-alive, in seconds."""
    return 4.0


@pytest.fixture(scope="session")
def sensevoice(
    tiny_models: TinyModels, keep_alive: float, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """asr-sensevoice on the tiny models; idle models leave after `keep_alive`, audio
    over 10 minutes is refused."""
    env = {
        **tiny_models.env(),
        "AISTACK_MODEL_KEEP_ALIVE_SEC": str(keep_alive),
        "AISTACK_MAX_AUDIO_SEC": "600",
    }
    service = _start(tmp_path_factory.mktemp("sensevoice") / "service.log", env)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def asr_engine(
    sensevoice: Service, speech: Speech, long_speech: Speech, keep_alive: float
) -> Engine:
    """asr-sensevoice for the shared contract suite (aistack_testing.asr_contract)."""
    return Engine(
        service=sensevoice,
        strict=sensevoice,
        model="iic/SenseVoiceSmall",
        provider="SenseVoice",
        speech=speech.data,
        long_speech=long_speech.data,
        keep_alive=keep_alive,
        cap_s=600.0,
    )

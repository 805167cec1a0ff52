"""Shared fixtures of the cross-component tests: a real ASR stack behind a real edge."""

import importlib.util
import os
from pathlib import Path

import pytest

from aistack_testing.audio import repeat_wav
from aistack_testing.edge import asr_edge_env

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# Every edge these tests start waits this long for a cancelled job to stop before it
# holds its backend back: on a busy two-core test machine one window of Whisper can run
# past the production default. Tests of the grace itself set their own.
os.environ.setdefault("AISTACK_STOP_GRACE_S", "60")


@pytest.fixture(scope="module")
def whisper(module_services):
    """The asr-whisper backend process with the bundled tiny.en."""
    return module_services.start("aistack_asr_whisper", timeout=120)


@pytest.fixture(scope="module")
def piper(module_services):
    """The tts-piper backend process with the bundled voice."""
    return module_services.start("aistack_tts_piper", timeout=120)


@pytest.fixture(scope="module")
def llm(module_services):
    """The embedded LLM: llama.cpp's server with the bundled SmolLM2."""
    return module_services.start("aistack_llm_llamacpp", timeout=120)


@pytest.fixture(scope="module")
def cpu_stack_env(whisper, piper, llm, redis_server) -> dict[str, str]:
    """An edge's settings for the whole CPU stack on the session's Redis."""
    return {
        "AISTACK_ASR_BACKENDS": whisper.url,
        "AISTACK_TTS_BACKENDS": piper.url,
        "AISTACK_LLM_UPSTREAMS": llm.url,
        "AISTACK_REDIS_URL": redis_server.url,
        "AISTACK_PROBE_TIMEOUT_S": "5",
    }


@pytest.fixture(scope="module")
def asr_edge(module_services, whisper, redis_server):
    """An edge on the session's Redis in front of asr-whisper."""
    return module_services.start("aistack_edge", env=asr_edge_env(whisper, redis_server))


@pytest.fixture(scope="session")
def long_wav(speech_wav, tmp_path_factory):
    """Three minutes of real speech: long enough to hold the slot for a while."""
    return repeat_wav(speech_wav, tmp_path_factory.mktemp("long") / "long.wav", 180)


@pytest.fixture(scope="session")
def script():
    """A module of scripts/ by name, loaded from its file (scripts/ is not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load

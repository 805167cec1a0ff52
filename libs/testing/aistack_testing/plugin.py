"""pytest fixtures shared by every component's tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from aistack_testing.redis_server import RedisServer

SENTENCE = "The quick brown fox jumps over the lazy dog. It was a sunny day in the park."


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A clean database on the session's Redis server."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About five seconds of real speech saying SENTENCE, 22050 Hz 16-bit mono WAV."""
    from aistack_testing.speech import speak

    return speak(SENTENCE, tmp_path_factory.mktemp("speech") / "sentence.wav")

"""pytest fixtures shared by every component's tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from aistack_testing.processes import Service, free_port, start_service
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


class Services:
    """Starts `python -m <module> --port <free port>` processes; stops them all at the end."""

    def __init__(self, logdir: Path) -> None:
        self._logdir = logdir
        self._started: list[Service] = []

    def start(self, module: str, env: dict[str, str] | None = None, timeout: float = 60) -> Service:
        port = free_port()
        log = self._logdir / f"{module}-{port}.log"
        args = ["-m", module, "--port", str(port)]
        service = start_service(args, port, log, env, timeout=timeout)
        self._started.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self._started):
            service.stop()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    started = Services(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def module_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """`services` shared by the tests of one module."""
    started = Services(tmp_path_factory.mktemp("services"))
    yield started
    started.stop_all()

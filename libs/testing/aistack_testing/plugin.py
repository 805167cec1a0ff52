"""pytest fixtures shared by every component's tests, and what the run reports about the
tests that could not run. Under CI (the `CI` variable set and not 0 or false, as `.ci/run`
sets it) a skip fails the run unless its reason is on ALLOWED_SKIPS: a green CI means every
test ran."""

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from aistack_testing import system
from aistack_testing.processes import Service, free_port, start_service
from aistack_testing.redis_server import RedisServer

SENTENCE = "The quick brown fox jumps over the lazy dog. It was a sunny day in the park."

# The skips a CI run may hold: a reason (a regular expression, matched in full) -> why it
# proves nothing is missing. Kept short on purpose; docs/deploy.md (Tests) lists the same.
ALLOWED_SKIPS: dict[str, str] = {
    r"\S+ translates": "the ASR contract's refusal of translation, on a model that translates:"
    " the case does not apply to it, and the model's translation is tested instead",
}


def strict() -> bool:
    """Whether a skip off the allow-list fails the run (CI)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def allowed(reason: str) -> bool:
    return any(re.fullmatch(pattern, reason) for pattern in ALLOWED_SKIPS)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    system.require("redis-server")
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


@pytest.fixture(scope="session")
def speech(speech_wav: Path) -> bytes:
    """`speech_wav`'s bytes: what a test uploads."""
    return speech_wav.read_bytes()


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


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Up front: each missing piece on its own line, so that skips come as no surprise."""
    lines = system.missing()
    if os.environ.get("AISTACK_CONTAINER_TESTS") != "1" and _runs_deploy_tests(config):
        lines.append(
            "no container engine (AISTACK_CONTAINER_TESTS is not 1): "
            "the container smoke tests will skip"
        )
    return [f"missing: {line}" for line in lines]


def _runs_deploy_tests(config: pytest.Config) -> bool:
    """Whether the paths this run was given hold tests/deploy (a torch backend's suite,
    run on its own folder, has no container tests)."""
    deploy = config.rootpath / "tests" / "deploy"
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == deploy or deploy in path.parents or path in deploy.parents:
            return True
    return False


_skipped: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped[_skip_reason(report)] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, a skip off the allow-list turns a green run red."""
    if strict() and exitstatus == pytest.ExitCode.OK and _refused():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _refused() -> list[str]:
    return [reason for reason in _skipped if not allowed(reason)]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The skips counted by reason, so that "passed" never hides "did not run"; under CI,
    which of them fail the run and which the allow-list lets through."""
    if not _skipped:
        return
    terminalreporter.section("skipped, by reason", sep="-", yellow=True)
    for text, count in _skipped.most_common():
        mark = ("allowed  " if allowed(text) else "FAILS CI ") if strict() else ""
        terminalreporter.line(f"{count:5d}  {mark}{text}")
    if strict() and _refused():
        terminalreporter.line(
            "CI is set: a skip off the allow-list (aistack_testing.plugin.ALLOWED_SKIPS) fails"
            " the run; install what is missing (scripts/system-packages.sh test)",
            red=True,
        )


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)

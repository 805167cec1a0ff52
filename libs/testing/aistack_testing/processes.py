"""Start real server processes on free ports and wait until they answer."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers with any HTTP status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@dataclass
class Service:
    """A server process started by a test, with the URL it listens on."""

    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_service(
    args: Sequence[str],
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    timeout: float = 60.0,
    python: str = sys.executable,
) -> Service:
    """Run `python args...` with `env` added to this environment; wait for `ready_path`.
    `python` may be another virtualenv's, for a service this one does not install."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, *args],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = Service(proc, url, log)
    try:
        wait_http(url + ready_path, timeout, proc)
    except Exception:
        service.kill()
        raise RuntimeError(f"{args} did not start:\n{service.output()}") from None
    return service


def start_module(module: str, log: Path, env: dict[str, str] | None = None) -> Service:
    """`python -m module --port P` on a free port, started as `start_service` starts it."""
    port = free_port()
    return start_service(["-m", module, "--port", str(port)], port, log, env)


def start_edge(asr_backends: str, log: Path, env: dict[str, str] | None = None) -> Service:
    """The edge in front of `asr_backends` (comma-separated URLs), its GPU slot in-process."""
    own = {"AISTACK_ASR_BACKENDS": asr_backends, "AISTACK_REDIS_URL": ""}
    return start_module("aistack_edge", log, {**own, **(env or {})})

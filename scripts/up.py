"""Start the CPU stack in the foreground: Redis (when installed), the backends, the edge.

Ctrl-C (or SIGTERM) stops everything this started. Run through `make up`.
"""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

HOST = os.environ.get("AISTACK_HOST", "127.0.0.1")
PORT = int(os.environ.get("AISTACK_PORT", "11500"))


@dataclass(frozen=True)
class Backend:
    module: str
    port: int
    capability: str  # which AISTACK_*_BACKENDS list of the edge it joins


BACKENDS = (
    Backend("aistack_asr_whisper", 11510, "ASR_BACKENDS"),
    Backend("aistack_tts_piper", 11520, "TTS_BACKENDS"),
    Backend("aistack_llm_llamacpp", 11530, "LLM_UPSTREAMS"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url} exited with status {proc.returncode} while starting")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer within {timeout:.0f} s")


def main() -> None:
    started: list[subprocess.Popen] = []

    def stop(*_: object) -> None:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    env = dict(os.environ)
    redis = shutil.which("redis-server")
    if redis and "AISTACK_REDIS_URL" not in env:
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="aistack-redis-")
        args = [redis, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", workdir]
        started.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
        env["AISTACK_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        print(f"redis-server on 127.0.0.1:{port} holds the GPU slot lease", flush=True)
    upstreams: dict[str, list[str]] = {}
    for backend in BACKENDS:
        if importlib.util.find_spec(backend.module) is None:
            print(f"{backend.module} is not installed; skipping it", flush=True)
            continue
        url = f"http://127.0.0.1:{backend.port}"
        proc = subprocess.Popen([sys.executable, "-m", backend.module, "--port", str(backend.port)])
        started.append(proc)
        wait_ready(url + "/health", proc)
        upstreams.setdefault(backend.capability, []).append(url)
        print(f"{backend.module} is up at {url}", flush=True)
    for name, urls in upstreams.items():
        env.setdefault(f"AISTACK_{name}", ",".join(urls))
    edge = subprocess.Popen(
        [sys.executable, "-m", "aistack_edge", "--host", HOST, "--port", str(PORT)], env=env
    )
    started.append(edge)
    wait_ready(f"http://{HOST}:{PORT}/health", edge)
    print(f"aistack is up: http://{HOST}:{PORT}/v1/models  (Ctrl-C stops it)", flush=True)
    edge.wait()
    stop()


if __name__ == "__main__":
    main()

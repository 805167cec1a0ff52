"""Start the CPU stack in the foreground and keep it up: Redis (when installed), the
backends, the edge. A process that exits is started again (scripts/supervisor.py).

Ctrl-C (or SIGTERM) stops everything this started. Run through `make up`; `--help` for the
ports.
"""

import argparse
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
from pathlib import Path

from stack import BACKENDS, add_port_options, backend_port
from supervisor import Child, Supervisor

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} up: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except OSError:
        return False


def wait_ready(supervisor: Supervisor, child: Child, url: str, timeout_s: float = 120) -> bool:
    """Wait until `url` answers, restarting what crashes meanwhile; False if `child` was
    given up on or did not answer in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not child.given_up:
        supervisor.tick()
        if child.running and answers(url):
            return True
        time.sleep(0.1)
    return False


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--host", default=os.environ.get("AISTACK_HOST", "127.0.0.1"))
    add_port_options(parser)
    return parser.parse_args()


def start_redis(supervisor: Supervisor, env: dict[str, str]) -> None:
    redis = shutil.which("redis-server")
    if not redis or "AISTACK_REDIS_URL" in env:
        return
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="aistack-redis-")
    args = [redis, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", workdir]
    supervisor.start(Child("redis-server", args, stdout=subprocess.DEVNULL))
    env["AISTACK_REDIS_URL"] = url = f"redis://127.0.0.1:{port}/0"
    mark_new_store(url)
    log(f"redis-server on 127.0.0.1:{port} holds the GPU slot lease")


def mark_new_store(url: str) -> None:
    """Tell the edge that this Redis, just started, lost no lease: it need not keep the
    slot for one TTL first (as it does for a Redis that restarted empty: the supervisor's
    restarts of it are left unmarked)."""
    import redis

    from aistack_edge.slot.stores import STORE_KEPT

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.set(STORE_KEPT, "1")
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.close()


def whisper_models() -> dict[str, str]:
    """Serve the multilingual Whisper base beside the bundled English-only tiny.en: its two
    installed parts joined once into a model directory of this checkout (about 2 s and
    145 MB the first time; nothing later). A model directory the user named is theirs:
    nothing is written into it. What asr-whisper's environment adds."""
    if "AISTACK_WHISPER_MODEL_DIR" in os.environ:
        return {}
    if importlib.util.find_spec("aistack_asr_whisper") is None:
        return {}
    from aistack_asr_whisper.parts import join_whisper_base

    model_dir = ROOT / ".run" / "whisper-models"
    try:
        joined = join_whisper_base(model_dir)
    except ModuleNotFoundError:
        log("the multilingual Whisper's parts are not installed (make setup); English only")
        return {}
    log(f"whisper-base (99 languages) is at {joined}")
    return {"AISTACK_WHISPER_MODEL_DIR": str(model_dir)}


def start_backends(
    supervisor: Supervisor, args: argparse.Namespace, envs: dict[str, dict[str, str]]
) -> dict[str, list[str]]:
    """Each installed backend (with what `envs` adds to its environment), once it
    answers: the edge's upstream settings."""
    upstreams: dict[str, list[str]] = {}
    for backend in BACKENDS:
        if importlib.util.find_spec(backend.module) is None:
            log(f"{backend.module} is not installed; skipping it")
            continue
        port = backend_port(args, backend)
        url = f"http://127.0.0.1:{port}"
        # Loopback whatever the edge's --host: only the edge is reached from outside.
        argv = [sys.executable, "-m", backend.module, "--host", "127.0.0.1", "--port", str(port)]
        child = supervisor.start(Child(backend.name, argv, env=envs.get(backend.name)))
        if wait_ready(supervisor, child, url + "/health"):
            log(f"{backend.name} is up at {url}")
        elif not child.given_up:
            log(f"{backend.name} is not answering at {url} yet; the edge lists it once it does")
        upstreams.setdefault(backend.capability, []).append(url)
    return upstreams


def main() -> None:
    args = parse_args()
    supervisor = Supervisor(log=log)

    def stop(*_: object) -> None:
        log("stopping")
        supervisor.stop_all()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    env = dict(os.environ)
    start_redis(supervisor, env)
    envs = {"asr-whisper": whisper_models()}
    for name, urls in start_backends(supervisor, args, envs).items():
        env.setdefault(f"AISTACK_{name}", ",".join(urls))
    argv = [sys.executable, "-m", "aistack_edge", "--host", args.host, "--port", str(args.port)]
    edge = supervisor.start(Child("edge", argv, env=env))
    # A wildcard bind is asked on loopback: the edge answers no Host of 0.0.0.0 or ::.
    local = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(args.host, args.host)
    if not wait_ready(supervisor, edge, f"http://{local}:{args.port}/health", 30):
        log("the edge did not start; stopping")
        stop()
    log(f"aistack is up: http://{args.host}:{args.port}/v1/models  (Ctrl-C stops it)")
    while True:
        supervisor.tick()
        time.sleep(0.2)


if __name__ == "__main__":
    main()

"""`make up`'s launcher (scripts/up.py) for real, on free ports: Redis, the three CPU
backends and the edge. A backend killed with SIGKILL is started again, the gateway
serves its capability within 10 s, and the edge's /metrics counts that one restart;
SIGTERM stops everything it started."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aistack_testing.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
BACK_WITHIN_S = 10
CAPABILITY = {"asr-whisper": "asr", "tts-piper": "tts", "llm-llamacpp": "llm"}


class Launcher:
    def __init__(
        self, proc: subprocess.Popen, log: Path, url: str, backends: dict[str, str]
    ) -> None:
        self.proc, self.log, self.url, self.backends = proc, log, url, backends

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pid_of(self, name: str) -> int:
        """The pid of `name`'s latest start, as the launcher logged it."""
        return int(re.findall(rf"up: {name} started \(pid (\d+)\)", self.output())[-1])

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.1)

    def restarts(self, name: str) -> float | None:
        """`name`'s aistack_backend_restarts_total on the edge's /metrics (None while
        absent: no probe has read its process start time yet)."""
        page = httpx.get(self.url + "/metrics", timeout=BACK_WITHIN_S).text
        labels = {"capability": CAPABILITY[name], "url": self.backends[name]}
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                if sample.name == "aistack_backend_restarts_total" and sample.labels == labels:
                    return sample.value
        return None


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    log = tmp_path_factory.mktemp("up") / "up.log"
    port = free_port()
    args = [sys.executable, ROOT / "scripts" / "up.py", "--port", str(port)]
    backends = {}
    for name in CAPABILITY:
        backend_port = free_port()
        args += [f"--{name}-port", str(backend_port)]
        backends[name] = f"http://127.0.0.1:{backend_port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    launcher = Launcher(proc, log, f"http://127.0.0.1:{port}", backends)
    try:
        launcher.wait_for("aistack is up", 240)
        yield launcher
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def transcribes(url: str, wav: Path) -> bool:
    files = {"file": ("speech.wav", wav.read_bytes())}
    r = httpx.post(
        url + "/v1/audio/transcriptions", files=files, data={"model": "auto"}, timeout=BACK_WITHIN_S
    )
    return r.status_code == 200 and "fox" in r.json()["text"].lower()


def speaks(url: str, wav: Path) -> bool:
    body = {"model": "piper", "voice": "alloy", "input": "Hello.", "response_format": "wav"}
    r = httpx.post(url + "/v1/audio/speech", json=body, timeout=BACK_WITHIN_S)
    return r.status_code == 200 and r.content.startswith(b"RIFF")


def chats(url: str, wav: Path) -> bool:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=BACK_WITHIN_S)
    return r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None


@pytest.mark.parametrize(
    ("name", "serves"),
    [("asr-whisper", transcribes), ("tts-piper", speaks), ("llm-llamacpp", chats)],
)
def test_a_killed_backend_is_restarted_served_again_within_10_s_and_counted(
    launcher, speech_wav, name, serves
):
    assert serves(launcher.url, speech_wav)
    before = {backend: launcher.restarts(backend) for backend in CAPABILITY}
    assert before[name] == 0
    pid = launcher.pid_of(name)
    killed = time.monotonic()
    subprocess.run(["kill", "-9", str(pid)], check=True)
    while not serves(launcher.url, speech_wav):
        assert time.monotonic() - killed < BACK_WITHIN_S, launcher.output()
        time.sleep(0.2)
    back_s = time.monotonic() - killed
    print(f"{name} served again {back_s:.1f} s after kill -9")
    assert back_s < BACK_WITHIN_S, launcher.output()
    assert launcher.pid_of(name) != pid
    assert f"up: {name} was killed by SIGKILL; starting it again in 0.5 s" in launcher.output()
    # Counted once a probe reads the new process' start time (a scrape probes when the
    # catalog's answer is older than AISTACK_MODELS_CACHE_S, 3 s).
    deadline = time.monotonic() + BACK_WITHIN_S
    while launcher.restarts(name) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    after = {backend: launcher.restarts(backend) for backend in CAPABILITY}
    assert after == {**before, name: 1}, launcher.output()


def test_sigterm_stops_everything_it_started(launcher):
    pids = [launcher.pid_of(name) for name in ("asr-whisper", "tts-piper", "llm-llamacpp", "edge")]
    launcher.proc.send_signal(signal.SIGTERM)
    assert launcher.proc.wait(30) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid), pid


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/status").read_text()


def listening(port: int) -> set[str]:
    """The local addresses with a socket listening on TCP `port` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def test_on_the_lan_only_the_edge_listens_beyond_loopback(tmp_path):
    """AISTACK_HOST=0.0.0.0 (the documented way to serve the LAN) moves the edge only:
    each backend reads its own variables and listens on loopback."""
    port, ports = free_port(), {name: free_port() for name in CAPABILITY}
    args = [sys.executable, ROOT / "scripts" / "up.py", "--port", str(port)]
    for name, backend_port in ports.items():
        args += [f"--{name}-port", str(backend_port)]
    env = {**os.environ, "AISTACK_HOST": "0.0.0.0", "AISTACK_PORT": str(port)}
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    launcher = Launcher(proc, log, f"http://127.0.0.1:{port}", {})
    try:
        launcher.wait_for("aistack is up", 240)
        assert listening(port) - LOOPBACK, "the edge listens on loopback only"
        for name, backend_port in ports.items():
            assert listening(backend_port), f"{name} is not listening"
            assert listening(backend_port) <= LOOPBACK, (name, listening(backend_port))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

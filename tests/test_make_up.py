"""`make up`'s launcher (scripts/up.py) for real, on free ports: Redis, the three CPU
backends and the edge. A first run hears more than English: German speech with
`model=auto` comes back as German, and `whisper-1` translates it. A backend killed with
SIGKILL is started again, the gateway serves its capability within 10 s, and the edge's
/metrics counts that one restart; SIGTERM stops everything it started."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aistack_testing.processes import free_port
from aistack_testing.speech import words_in_order, words_of

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
    """The bundled tiny.en: the quickest to load and run again after a restart (`auto`
    takes Whisper base, tested below)."""
    files = {"file": ("speech.wav", wav.read_bytes())}
    data = {"model": "whisper-tiny.en"}
    r = httpx.post(url + "/v1/audio/transcriptions", files=files, data=data, timeout=BACK_WITHIN_S)
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


# espeak-ng's German, three sentences: Whisper base detects it reliably on this much
# (a single short synthetic sentence it sometimes takes for English).
GERMAN = (
    "Guten Morgen. Ich möchte heute Abend einen Tisch für vier Personen reservieren. "
    "Vielen Dank und bis später."
)


@pytest.fixture(scope="module")
def german_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("espeak") / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-w", str(path), GERMAN], check=True)
    return path


def test_a_first_run_knows_more_than_english(launcher):
    """make up serves Whisper base (joined from its PyPI parts) beside tiny.en, and
    /v1/models says which languages each knows."""
    client = openai.OpenAI(base_url=launcher.url + "/v1", api_key="unused", max_retries=0)
    cards = {model.id: model.model_dump() for model in client.models.list()}
    assert cards["whisper-tiny.en"]["languages"] == ["en"]
    base = cards["whisper-base"]
    assert {"en", "de", "es"} <= set(base["languages"]) and len(base["languages"]) == 99
    assert base["supports_translate"] is True
    assert "up: whisper-base (99 languages) is at " in launcher.output()


def test_a_first_run_detects_german_and_translates_it(launcher, german_wav):
    client = openai.OpenAI(
        base_url=launcher.url + "/v1", api_key="unused", max_retries=0, timeout=120
    )
    with german_wav.open("rb") as f:
        heard = client.audio.transcriptions.create(
            model="auto", file=f, response_format="verbose_json"
        )
    assert heard.language == "de", heard.text
    assert words_in_order(GERMAN, heard.text) >= 0.5, heard.text
    with german_wav.open("rb") as f:
        translated = client.audio.translations.create(model="whisper-1", file=f)
    english = set(words_of(translated.text))
    assert len(english & {"good", "morning", "table", "four", "people", "thank", "you"}) >= 3, (
        translated.text
    )
    assert not english & {"guten", "morgen", "ich", "tisch", "vielen", "dank"}, translated.text


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

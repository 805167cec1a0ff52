"""scripts/doctor.py (`make doctor`) on this machine: a line per check, and for a problem
one line saying what to do; exit status 1 when a check fails."""

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from aistack_testing.processes import free_port

ROOT = Path(__file__).resolve().parents[1]

# nvidia-smi as an H200 with its driver answers: the query, then the banner's header line.
FAKE_SMI = """#!/bin/sh
if [ "$#" -gt 0 ]; then echo "NVIDIA H200, 143771, 570.86.15"; exit 0; fi
echo "| NVIDIA-SMI 570.86.15    Driver Version: 570.86.15    CUDA Version: {cuda}     |"
"""


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    run = subprocess.run(
        [sys.executable, ROOT / "scripts" / "doctor.py", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert run.stderr == ""
    return run.returncode, run.stdout.splitlines()


def free_ports() -> list[str]:
    args = ["--port", str(free_port())]
    for name in ("asr-whisper", "tts-piper", "llm-llamacpp"):
        args += [f"--{name}-port", str(free_port())]
    return args


def line_about(lines: list[str], text: str) -> str:
    (line,) = [line for line in lines if text in line]
    return line


def test_every_check_says_ok_or_what_to_do():
    status, lines = doctor(*free_ports())
    *checks, verdict = lines
    assert {line[:4] for line in checks} <= {"ok  ", "FAIL", "warn"}
    assert all(" -> " in line for line in checks if not line.startswith("ok"))
    assert line_about(checks, "Python 3.").startswith("ok")  # this test runs on 3.11+
    assert "GB free on the repository's disk" in "".join(checks)
    assert "GB of memory available" in "".join(checks)
    assert (status == 0) == (verdict == "ready for the cpu profile")


def test_a_port_in_use_fails_and_says_how_to_move():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, lines = doctor(*free_ports(), "--asr-whisper-port", str(port))
    assert status == 1
    assert line_about(lines, f"port {port}") == (
        f"FAIL port {port} (asr-whisper) is in use -> stop what listens there "
        f"(ss -ltnp 'sport = :{port}'), or make up UP_ARGS='--asr-whisper-port <another>'"
    )


def test_make_ups_host_is_taken_too():
    """The same UP_ARGS as make up: --host is read (it exited 2 before), and the edge's
    port is checked on that address."""
    status, lines = doctor(*free_ports(), "--host", "0.0.0.0")
    assert status in (0, 1) and lines[-1].startswith(("ready", "not ready"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.2", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _, on_other = doctor(*free_ports(), "--port", str(port), "--host", "127.0.0.2")
    assert line_about(on_other, f"port {port}").startswith("FAIL")


def test_too_little_disk_fails_with_how_much_to_free():
    status, lines = doctor(*free_ports(), "--disk-gb", "99999")
    assert status == 1
    line = line_about(lines, "free on the repository's disk")
    assert line.startswith("FAIL") and "(needs 99999 GB) -> free " in line


def test_the_gpu_profile_checks_the_card_and_its_driver(tmp_path):
    """With an nvidia-smi whose driver is too old for tts-qwen3's CUDA 13.0."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(cuda="12.8"))
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    status, lines = doctor("--profile", "gpu", "--port", str(free_port()), env=env)
    assert status == 1
    assert line_about(lines, "GPU NVIDIA H200").startswith("ok   GPU NVIDIA H200, 151 GB")
    assert line_about(lines, "CUDA up to") == (
        "FAIL the driver runs CUDA up to 12.8 (needs 13.0) -> a driver for CUDA 13.0 or newer "
        "(tts-qwen3's image carries it)"
    )

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

# nvidia-smi as a card with its driver answers: a query (its fields in the order asked:
# name, memory.total, driver_version, compute_cap), then the banner's header line.
FAKE_SMI = """#!/bin/sh
if [ "$#" -gt 0 ]; then
  case "$1" in *compute_cap*) echo "{card}, {cap}";; *) echo "{card}";; esac
  exit 0
fi
echo "| NVIDIA-SMI 580.65.06    Driver Version: 580.65.06    CUDA Version: {cuda}     |"
"""
H200 = "NVIDIA H200, 143771, 570.86.15"
V100 = "Tesla V100-SXM2-32GB, 32768, 580.65.06"
RTX_4060 = "NVIDIA GeForce RTX 4060, 8188, 580.65.06"


def fake_smi(tmp_path: Path, card: str = H200, cap: str = "9.0", cuda: str = "13.0") -> dict:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(card=card, cap=cap, cuda=cuda))
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{tmp_path}:{os.environ['PATH']}"}


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
    env = fake_smi(tmp_path, cuda="12.8")
    status, lines = doctor("--profile", "gpu", "--port", str(free_port()), env=env)
    assert status == 1
    assert line_about(lines, "GPU NVIDIA H200").startswith("ok   GPU NVIDIA H200, 151 GB")
    assert line_about(lines, "CUDA up to") == (
        "FAIL the driver runs CUDA up to 12.8 (needs 13.0) -> a driver for CUDA 13.0 or newer "
        "(torch 2.13's CUDA 13 in asr-parakeet and asr-sensevoice, tts-qwen3's image)"
    )


def test_a_volta_card_is_refused_for_cuda_13(tmp_path):
    """CUDA 13 dropped Volta (compute capability 7.0) and older: torch's CUDA 13 build
    would not run there, and device=auto would fall back to the CPU without a word."""
    env = fake_smi(tmp_path, card=V100, cap="7.0")
    status, lines = doctor("--profile", "gpu", "--port", str(free_port()), env=env)
    assert status == 1
    assert line_about(lines, "compute capability") == (
        "FAIL Tesla V100-SXM2-32GB has compute capability 7.0 (CUDA 13 needs 7.5 or newer: "
        "Turing, Ampere, Ada, Hopper, Blackwell) -> a newer card; on this one only the cpu "
        "profile runs"
    )


def test_the_vram_budget_says_what_fits_and_what_is_evicted(tmp_path):
    env = fake_smi(tmp_path)
    _, lines = doctor("--profile", "gpu", "--port", str(free_port()), env=env)
    budget = line_about(lines, "VRAM budget")
    assert budget.startswith("ok   VRAM budget (exclusive): tts-qwen3 keeps 0.6 of 151 GB")
    assert "one at a time" in budget


def test_an_8_gb_card_under_the_default_share_does_not_hold_whisper_large(tmp_path):
    """tts-qwen3 keeps 0.6 of the card for its life: 3.4 GB of 8.6 are left, and Whisper
    large-v3 (about 4.5 GB) does not fit there."""
    env = fake_smi(tmp_path, card=RTX_4060, cap="8.9")
    status, lines = doctor("--profile", "gpu", "--port", str(free_port()), env=env)
    assert status == 1
    budget = line_about(lines, "VRAM budget")
    assert budget.startswith("FAIL VRAM budget (exclusive): tts-qwen3 keeps 0.6 of 8.6 GB")
    assert "asr-whisper (large-v3) needs 4.5 GB" in budget
    assert "AISTACK_QWEN3_GPU_MEMORY_UTILIZATION=0.3" in budget
    env["AISTACK_QWEN3_GPU_MEMORY_UTILIZATION"] = "0.25"
    env["AISTACK_WHISPER_SIZES"] = "small"
    status, lines = doctor("--profile", "gpu", "--port", str(free_port()), env=env)
    assert line_about(lines, "VRAM budget").startswith("ok   VRAM budget (exclusive)")


def test_shared_adds_every_model_up(tmp_path):
    env = {**fake_smi(tmp_path, card=RTX_4060, cap="8.9"), "AISTACK_SWAP_POLICY": "shared"}
    _, lines = doctor("--profile", "gpu", "--port", str(free_port()), env=env)
    budget = line_about(lines, "VRAM budget")
    assert budget.startswith("FAIL VRAM budget (shared): ")
    assert "all at once" in budget

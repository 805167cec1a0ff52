"""Check this machine before `make up` (or the compose `gpu` profile): one line per check,
and for each problem one line saying what to do about it. Exit status 1 when a check fails.

    make doctor                 # the CPU stack as processes (make up)
    make doctor PROFILE=gpu     # the compose `gpu` profile: also the GPU, its driver, Docker

Standard library only, and plain enough for an old Python 3: it must run before .venv
exists, and say so when the Python is too old.
"""

from __future__ import annotations

import argparse
import errno
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass

from stack import BACKENDS, add_port_options, backend_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON_MIN = (3, 11)
# What the profile's models and software take, measured with margin: the CPU stack's .venv
# is about 0.9 GB, llama.cpp's build about 1 GB more while it runs, the four processes
# about 1.3 GB resident; the GPU images and model caches run to tens of GB.
NEEDS = {
    "cpu": {"disk_gb": 3.0, "memory_gb": 2.0},
    "gpu": {"disk_gb": 60.0, "memory_gb": 16.0, "vram_gb": 8.0, "cuda": (13, 0)},
}


# CUDA 13 (torch 2.13's build in asr-parakeet and asr-sensevoice, tts-qwen3's image) runs
# on compute capability 7.5 and newer: Volta (7.0) and older are dropped.
COMPUTE_MIN = (7, 5)
# VRAM a GPU backend's model holds while loaded, in GB, with margin (docs/deploy.md's table):
# faster-whisper in float16 by size; Parakeet's 0.6 B parameters in float32 and a window's
# activations; SenseVoice Small and its VAD; an Ollama model of the default size (--llm-gb).
WHISPER_GB = {"tiny": 0.5, "base": 0.6, "small": 1.2, "medium": 2.6, "turbo": 2.5, "distil": 2.5}
WHISPER_LARGE_GB = 4.5
PARAKEET_GB = 3.0
SENSEVOICE_GB = 1.5
LLM_GB = 6.0  # qwen3:8b at Q4_K_M with its context


@dataclass
class Result:
    ok: bool
    what: str
    fix: str = ""
    required: bool = True  # a failed optional check warns; it does not fail the run

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        fix = f" -> {self.fix}" if not self.ok and self.fix else ""
        return f"{mark} {self.what}{fix}"


def python_version() -> Result:
    found = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= PYTHON_MIN:
        return Result(True, f"Python {found}")
    want = ".".join(map(str, PYTHON_MIN))
    return Result(
        False,
        f"Python {found} is older than {want}",
        f"install python{want} (apt-get install python3), or run with PYTHON=python{want}",
    )


def venv_module() -> Result:
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        return Result(False, "Python cannot create .venv", "apt-get install python3-venv")
    return Result(True, "Python can create .venv")


def compiler() -> Result:
    if glob.glob(os.path.join(ROOT, "services/llm-llamacpp/wheels/llama_cpp_python-*.whl")):
        return Result(True, "llama-cpp-python's wheel is built already")
    if shutil.which("g++") or shutil.which("c++"):
        return Result(True, "a C++ compiler for llama.cpp's one-time build")
    return Result(
        False, "no C++ compiler to build llama.cpp (once)", "apt-get install build-essential"
    )


def redis() -> Result:
    if shutil.which("redis-server"):
        return Result(True, "redis-server, for the GPU slot lease")
    return Result(
        False,
        "no redis-server: the edge will hold the GPU slot lease in-process",
        "apt-get install redis-server (needed for several edges, and by make test)",
        required=False,
    )


def disk(need_gb: float) -> Result:
    free_gb = shutil.disk_usage(ROOT).free / 1e9
    what = f"{free_gb:.1f} GB free on the repository's disk (needs {need_gb:g} GB)"
    if free_gb >= need_gb:
        return Result(True, what)
    return Result(False, what, f"free {need_gb - free_gb:.1f} GB more there")


def memory(need_gb: float) -> Result:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    available_gb = int(fields["MemAvailable"].split()[0]) * 1024 / 1e9
    what = f"{available_gb:.1f} GB of memory available (needs {need_gb:g} GB)"
    if available_gb >= need_gb:
        return Result(True, what)
    return Result(False, what, "stop other programs, or run on a machine with more memory")


def port(number: int, owner: str, move: str, host: str = "127.0.0.1") -> Result:
    with socket.socket() as sock:
        # As the servers do: a port held only by closed connections (TIME_WAIT) is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, number))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            return Result(
                False,
                f"port {number} ({owner}) is in use",
                f"stop what listens there (ss -ltnp 'sport = :{number}'), or {move}",
            )
    return Result(True, f"port {number} ({owner}) is free")


def ports(args: argparse.Namespace) -> list[Result]:
    move = "make up UP_ARGS='--port <another>'"
    results = [port(args.port, "the edge", move, args.host)]
    for backend in BACKENDS:
        move = f"make up UP_ARGS='{backend.option} <another>'"
        results.append(port(backend_port(args, backend), backend.name, move))
    return results


def gpu(need_vram_gb: float, cuda: tuple[int, int], llm_gb: float = LLM_GB) -> list[Result]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        fix = "install the NVIDIA driver (the distribution's package), or use the cpu profile"
        return [Result(False, "no NVIDIA GPU driver (nvidia-smi not found)", fix)]
    fields = "name,memory.total,driver_version,compute_cap"
    run = _smi(smi, fields)
    if run.returncode != 0:  # a driver older than 510 knows no compute_cap
        fields = "name,memory.total,driver_version"
        run = _smi(smi, fields)
    if run.returncode != 0 or not run.stdout.strip():
        detail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no GPU listed"]
        return [Result(False, f"nvidia-smi fails: {detail[0]}", "reinstall the driver, reboot")]
    name, total_mib, driver, *cap = (part.strip() for part in run.stdout.splitlines()[0].split(","))
    vram_gb = float(total_mib) * 1024 * 1024 / 1e9
    results = [
        Result(
            vram_gb >= need_vram_gb,
            f"GPU {name}, {vram_gb:.0f} GB, driver {driver} (needs {need_vram_gb:g} GB)",
            "a smaller card: AISTACK_SWAP_POLICY=exclusive and fewer GPU backends (docs/llm.md)",
        )
    ]
    if cap:
        results.append(compute_capability(name, cap[0]))
    header = subprocess.run([smi], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", header)
    if found:
        version = (int(found.group(1)), int(found.group(2)))
        want = ".".join(map(str, cuda))
        results.append(
            Result(
                version >= cuda,
                f"the driver runs CUDA up to {found.group(1)}.{found.group(2)} (needs {want})",
                f"a driver for CUDA {want} or newer (torch 2.13's CUDA 13 in asr-parakeet and "
                "asr-sensevoice, tts-qwen3's image)",
            )
        )
    results.append(vram_budget(vram_gb, llm_gb))
    return results


def _smi(smi: str, fields: str) -> subprocess.CompletedProcess:
    query = [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"]
    return subprocess.run(query, capture_output=True, text=True, timeout=30)


def compute_capability(name: str, found: str) -> Result:
    version = tuple(int(part) for part in found.split("."))
    want = ".".join(map(str, COMPUTE_MIN))
    return Result(
        version >= COMPUTE_MIN,
        f"{name} has compute capability {found} (CUDA 13 needs {want} or newer: Turing, "
        "Ampere, Ada, Hopper, Blackwell)",
        "a newer card; on this one only the cpu profile runs",
    )


def whisper_gb(size: str) -> float:
    for prefix, gb in WHISPER_GB.items():
        if prefix in size:
            return gb
    return WHISPER_LARGE_GB


def vram_budget(card_gb: float, llm_gb: float) -> Result:
    """What the gpu profile's models need against the card, under the swap policy compose
    gives the edge: tts-qwen3 keeps its share for its whole life; under `exclusive` the
    others take turns (each transcription, chat or speech evicts the other backends' idle
    models first), under `shared` they are all up at once."""
    policy = os.environ.get("AISTACK_SWAP_POLICY", "exclusive")
    share = float(os.environ.get("AISTACK_QWEN3_GPU_MEMORY_UTILIZATION", "0.6"))
    sizes = os.environ.get("AISTACK_WHISPER_SIZES", "large-v3").split(",")
    needs = [(f"asr-whisper ({size})", whisper_gb(size)) for size in sizes if size]
    needs += [
        ("asr-parakeet", PARAKEET_GB),
        ("asr-sensevoice", SENSEVOICE_GB),
        (f"ollama (a {llm_gb:g} GB model)", llm_gb),
    ]
    card = f"{card_gb:.0f}" if card_gb >= 20 else f"{card_gb:.1f}"
    left = card_gb * (1 - share)
    head = f"VRAM budget ({policy}): tts-qwen3 keeps {share:g} of {card} GB for its life, "
    if policy == "shared":
        total = sum(gb for _, gb in needs)
        what = f"{head}the others, all at once, need {total:.1f} GB of the {left:.1f} GB left"
        fix = "AISTACK_SWAP_POLICY=exclusive (they then take turns), or a larger card"
        return Result(total <= left, what, fix)
    too_big = [(n, gb) for n, gb in needs if gb > left]
    what = f"{head}the others take turns, one at a time, in the {left:.1f} GB left"
    if not too_big:
        return Result(True, what + " (each evicts the others' idle models before it runs)")
    most = max(gb for _, gb in needs)
    fit = int((card_gb - most) / card_gb * 10) / 10
    what += ": " + ", ".join(f"{n} needs {gb:g} GB" for n, gb in too_big)
    fix = (
        f"AISTACK_QWEN3_GPU_MEMORY_UTILIZATION={fit:g} makes room for the largest, or a smaller "
        "Whisper (AISTACK_WHISPER_SIZES=small) or Ollama model (--llm-gb), or a larger card"
    )
    return Result(False, what, fix)


def docker() -> list[Result]:
    if shutil.which("docker") is None:
        fix = "install Docker Engine with the Compose plugin (docs/deploy.md)"
        return [Result(False, "no docker", fix)]
    info = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if info.returncode != 0:
        return [Result(False, "docker does not answer", "start it: systemctl start docker")]
    return [
        Result(
            "nvidia" in info.stdout,
            "Docker's NVIDIA runtime",
            "install the NVIDIA Container Toolkit, then: nvidia-ctk runtime configure "
            "--runtime=docker && systemctl restart docker",
        )
    ]


def checks(args: argparse.Namespace, needs: dict) -> list[Result]:
    results = [python_version(), disk(needs["disk_gb"]), memory(needs["memory_gb"])]
    if args.profile == "cpu":
        return [*results, venv_module(), compiler(), redis(), *ports(args)]
    publish = "publish it elsewhere: AISTACK_PUBLISH=127.0.0.1:<another>"
    return [
        *results,
        *gpu(needs["vram_gb"], needs["cuda"], args.llm_gb),
        *docker(),
        port(args.port, "the edge", publish),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(NEEDS), default="cpu")
    parser.add_argument(
        "--disk-gb", type=float, help="free disk to ask for (default: the profile's)"
    )
    parser.add_argument(
        "--memory-gb", type=float, help="memory to ask for (default: the profile's)"
    )
    parser.add_argument(
        "--llm-gb",
        type=float,
        default=LLM_GB,
        help="VRAM of the largest Ollama model you will pull (gpu profile's budget)",
    )
    add_port_options(parser)  # the ports make up will take (UP_ARGS)
    # make up's --host too, so that the same UP_ARGS serve both: the edge's port is
    # checked on the address it will listen on.
    parser.add_argument("--host", default=os.environ.get("AISTACK_HOST", "127.0.0.1"))
    args = parser.parse_args()
    needs = dict(NEEDS[args.profile])
    needs["disk_gb"] = args.disk_gb if args.disk_gb is not None else needs["disk_gb"]
    needs["memory_gb"] = args.memory_gb if args.memory_gb is not None else needs["memory_gb"]
    results = checks(args, needs)
    for result in results:
        print(result.line())
    failed = [r for r in results if not r.ok and r.required]
    print(f"{len(failed)} problem(s)" if failed else f"ready for the {args.profile} profile")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

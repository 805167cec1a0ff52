"""What the benchmarks share: services on free ports, real speech, percentiles, memory."""

import contextlib
import math
import resource
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path

from aistack_testing.audio import repeat_wav
from aistack_testing.plugin import SENTENCE
from aistack_testing.processes import Service, free_port, start_service
from aistack_testing.speech import speak


@contextlib.contextmanager
def started(module: str, env: dict[str, str], logdir: Path) -> Iterator[Service]:
    """`python -m module --port P` with `env` added, on a free port; stopped on exit."""
    port = free_port()
    args = ["-m", module, "--port", str(port)]
    service = start_service(args, port, logdir / f"{module}-{port}.log", env, timeout=120)
    try:
        yield service
    finally:
        service.stop()


def sentence_wav(work: Path) -> Path:
    """About five seconds of Piper saying the tests' sentence, as a WAV in `work`."""
    path = work / "sentence.wav"
    return path if path.exists() else speak(SENTENCE, path)


def clip(work: Path, seconds: float) -> Path:
    """The sentence repeated until it lasts at least `seconds`."""
    return repeat_wav(sentence_wav(work), work / f"{seconds:g}s.wav", seconds)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50 and p99 of latencies, in milliseconds, and how many there were."""
    return {
        "p50_ms": statistics.median(seconds) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "n": len(seconds),
    }


def peak_mib(pid: int | None = None) -> float:
    """Peak resident memory (VmHWM) of process `pid`, or of this one."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

"""What the benchmarks share: services on free ports, real speech, percentiles, memory,
CPU time."""

import contextlib
import math
import resource
import statistics
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path

from aistack_testing.plugin import SENTENCE
from aistack_testing.processes import Service, free_port, start_service
from aistack_testing.speech import speak

PASSAGE = (
    "The harbour wakes before the town does. Fishing boats leave at half past four, "
    "their engines coughing in the cold air. By six the market hall is full of crates, "
    "and the auctioneer starts with the mackerel. A baker on the corner sells bread to "
    "the crews and coffee to anyone awake. Children walk to school along the sea wall, "
    "counting the gulls on the railings. At noon the tide turns and the ferry from the "
    "island arrives with tourists, bicycles and the post. In the afternoon the old "
    "lighthouse keeper repaints the door of his cottage, green this year instead of blue. "
    "Storms come in from the west in October, and the harbour master closes the gates. "
    "Most evenings end at the pub by the slipway, where the talk is of weather and prices. "
    "Nobody agrees on who caught the largest fish last summer."
)


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
    """PASSAGE spoken again and again, cut to `seconds`. Distinct sentences: a window
    of one sentence over and over makes Whisper's text compress so well that it falls
    back to sampling at higher temperatures, and the timings would measure that."""
    passage = work / "passage.wav"
    if not passage.exists():
        speak(PASSAGE, passage)
    with wave.open(str(passage), "rb") as inp:
        params = inp.getparams()
        frames = inp.readframes(params.nframes)
    size = round(seconds * params.framerate) * params.sampwidth * params.nchannels
    path = work / f"{seconds:g}s.wav"
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes((frames * -(-size // len(frames)))[:size])
    return path


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


def cpu_ns(pid: int) -> tuple[int, int] | None:
    """Nanoseconds the main thread of `pid` (an event loop's) has run on a CPU, and has
    waited for one while runnable; None where the kernel keeps no scheduler stats."""
    try:
        running, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return None
    return int(running), int(waiting)

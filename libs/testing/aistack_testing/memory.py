"""A process's resident memory and its peak, from /proc/<pid>/status (proc(5))."""

from pathlib import Path


def status_kib(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in KiB: VmRSS (resident now), VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {field} for process {pid}")


def reset_peak(pid: int) -> None:
    """Set the process's VmHWM back to its VmRSS now (clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class PeakGrowth:
    """How far a process's resident memory rose above where it stood at the start:
    `with PeakGrowth(pid) as growth: ...` then `growth.mib`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mib = 0.0

    def __enter__(self) -> "PeakGrowth":
        reset_peak(self.pid)
        self._before = status_kib(self.pid, "VmRSS")
        return self

    def read(self) -> float:
        """The growth so far, in MiB."""
        self.mib = (status_kib(self.pid, "VmHWM") - self._before) / 1024
        return self.mib

    def __exit__(self, *_: object) -> None:
        self.read()

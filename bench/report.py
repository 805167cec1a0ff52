"""The suite's output: the machine it ran on, one table, one JSON file."""

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

Value = float | int | bool | str | None


@dataclass(frozen=True)
class Row:
    """One figure: through the edge (or on its own), and its baseline from the same run."""

    figure: str
    unit: str
    edge: Value
    baseline: Value = None
    vs: str = ""

    @property
    def ratio(self) -> float | None:
        """edge / baseline, where both are numbers."""
        edge, baseline = self.edge, self.baseline
        if not (_number(edge) and _number(baseline) and baseline):
            return None
        return edge / baseline  # type: ignore[operator]

    def cells(self) -> list[str]:
        return [
            self.figure,
            self.unit,
            show(self.edge),
            show(self.baseline),
            self.vs,
            show(self.ratio),
        ]


def _number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def machine() -> dict:
    """Cores, CPU model, memory and Python of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    total_kib = int(meminfo[meminfo.index("MemTotal:") + 1])
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(total_kib / 2**20, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def show(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def render(parts: dict[str, list[Row]], report: dict) -> str:
    """A plain-text table: a block per part; ratio = edge / baseline."""
    m = report["machine"]
    lines = [
        f"aistack benchmarks ({report['mode']}): {m['cores']} cores, {m['cpu']}, "
        f"{m['memory_gib']} GiB; load average {report['load_before'][0]:.2f} at the start, "
        f"{report['load_after'][0]:.2f} at the end; {report['wall_s'] / 60:.1f} min",
    ]
    heads = ["figure", "unit", "edge", "baseline", "vs", "ratio"]
    table = [r.cells() for rows in parts.values() for r in rows]
    widths = [max(len(c) for c in column) for column in zip(heads, *table, strict=True)]
    for title, rows in parts.items():
        lines += ["", title]
        for cells in [heads, *(r.cells() for r in rows)]:
            lines.append(
                "  ".join(
                    c.ljust(w) if i in (0, 1, 4) else c.rjust(w)
                    for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                ).rstrip()
            )
    return "\n".join(lines)


def results_path(folder: Path) -> Path:
    """folder/<date>-<time>.json, the folder made if need be."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / time.strftime("%Y-%m-%d-%H%M%S.json")


def write_json(path: Path, report: dict, parts: dict[str, list[Row]]) -> None:
    """`report` and the table's rows, as JSON."""
    table = {
        title: [{**asdict(r), "ratio": r.ratio} for r in rows] for title, rows in parts.items()
    }
    path.write_text(json.dumps({**report, "table": table}, indent=2, default=str))

"""The latest finished requests, in memory, and what they add up to (the admin page's
recent requests and metrics at a glance)."""

import time
from collections import Counter, deque
from dataclasses import asdict, dataclass

from aistack_edge.observability.exchange import BUSY, DISCONNECT, UPSTREAM_DOWN

# The span of the glance: requests per minute, latency percentiles, errors by kind.
GLANCE_S = 300.0


@dataclass(frozen=True)
class Finished:
    """One finished request, as the admin page lists it."""

    at: float
    """Wall-clock time of its end, epoch seconds."""
    request_id: str
    method: str
    path: str
    status: int
    capability: str
    model: str
    outcome: str
    latency_ms: float
    error_kind: str | None


class RecentRequests:
    """A ring of the last `size` requests; the oldest fall out."""

    def __init__(self, size: int) -> None:
        self._ring: deque[Finished] = deque(maxlen=size)

    def add(self, finished: Finished) -> None:
        self._ring.append(finished)

    def latest(self, count: int) -> list[dict]:
        """The newest `count`, newest first."""
        return [asdict(f) for f in list(self._ring)[-count:][::-1]]

    def glance(self, now: float | None = None) -> dict:
        """Over the ring's requests of the last GLANCE_S: requests per minute, p50 and
        p95 latency per capability, errors by kind (the envelope's, else the outcome)."""
        now = time.time() if now is None else now
        window = [f for f in self._ring if now - f.at <= GLANCE_S]
        span_s = min(GLANCE_S, now - window[0].at) if window else GLANCE_S
        latencies: dict[str, list[float]] = {}
        for f in window:
            latencies.setdefault(f.capability, []).append(f.latency_ms)
        errors = Counter(_error_label(f) for f in window if f.outcome != "2xx")
        return {
            "window_s": GLANCE_S,
            "requests": len(window),
            "requests_per_min": round(len(window) * 60 / max(span_s, 60.0), 2),
            "latency_ms": {
                capability: {
                    "count": len(values),
                    "p50": percentile(values, 50),
                    "p95": percentile(values, 95),
                }
                for capability, values in sorted(latencies.items())
            },
            "errors": dict(errors.most_common()),
        }


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return round(ordered[int(rank) - 1], 3)


def _error_label(finished: Finished) -> str:
    """What went wrong: the outcome where it says more than the envelope's kind (a busy
    slot and a backend outage are both kind `network`), else the kind, else the status
    class."""
    if finished.outcome in (BUSY, UPSTREAM_DOWN, DISCONNECT):
        return finished.outcome
    return finished.error_kind or finished.outcome

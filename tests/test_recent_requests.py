"""The admin page's ring of recent requests and its glance: percentiles, the window,
requests per minute, errors by kind."""

from aistack_edge.observability.recent import GLANCE_S, Finished, RecentRequests, percentile

NOW = 1_000_000.0


def finished(at: float, capability: str = "asr", latency_ms: float = 10.0, **kw) -> Finished:
    fields = {"status": 200, "outcome": "2xx", "error_kind": None, **kw}
    return Finished(
        at=at,
        request_id="r",
        method="POST",
        path="/v1/audio/transcriptions",
        capability=capability,
        model="m",
        latency_ms=latency_ms,
        **fields,
    )


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_the_ring_keeps_the_newest_first():
    ring = RecentRequests(3)
    for n in range(5):
        ring.add(finished(NOW + n, latency_ms=n))
    assert [r["latency_ms"] for r in ring.latest(10)] == [4, 3, 2]
    assert [r["latency_ms"] for r in ring.latest(1)] == [4]


def test_glance_over_the_window():
    ring = RecentRequests(100)
    ring.add(finished(NOW - GLANCE_S - 1, latency_ms=9999))  # outside the window
    for n in range(20):
        ring.add(finished(NOW - 120 + n, latency_ms=float(n + 1)))
    ring.add(finished(NOW - 10, "tts", 50.0, status=400, outcome="4xx", error_kind="malformed"))
    ring.add(finished(NOW - 5, "tts", 70.0, status=503, outcome="busy", error_kind="network"))
    ring.add(finished(NOW - 1, "llm", 5.0, status=499, outcome="disconnect"))
    ring.add(finished(NOW - 1, "llm", 5.0, status=502, outcome="upstream_down",
                      error_kind="network"))  # fmt: skip
    glance = ring.glance(NOW)
    assert glance["requests"] == 24
    assert glance["requests_per_min"] == round(24 * 60 / 120, 2)
    assert glance["latency_ms"]["asr"] == {"count": 20, "p50": 10.0, "p95": 19.0}
    assert glance["latency_ms"]["tts"] == {"count": 2, "p50": 50.0, "p95": 70.0}
    assert glance["errors"] == {"malformed": 1, "busy": 1, "disconnect": 1, "upstream_down": 1}


def test_a_short_history_counts_per_minute_not_per_second():
    ring = RecentRequests(10)
    ring.add(finished(NOW - 2))
    ring.add(finished(NOW - 1))
    assert ring.glance(NOW)["requests_per_min"] == 2.0
    assert RecentRequests(10).glance(NOW)["requests_per_min"] == 0.0

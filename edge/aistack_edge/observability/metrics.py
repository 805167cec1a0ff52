"""The edge's Prometheus metrics, on a registry of its own (one per application)."""

import bisect
import functools
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from aistack_edge.observability.exchange import Exchange

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_RTF_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)

# (capability, url, up) for every configured backend, as of the latest probe.
BackendStates = Callable[[], Iterable[tuple[str, str, bool]]]
# (capability, url, restarts) for every backend whose process start time the probes read.
BackendRestarts = Callable[[], Iterable[tuple[str, str, int]]]


class _Backends(Collector):
    """aistack_backend_up and aistack_backend_restarts_total, read from the catalog's
    probes at scrape time."""

    def __init__(self, states: BackendStates, restarts: BackendRestarts) -> None:
        self._states = states
        self._restarts = restarts

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "aistack_backend_up",
            "1 when the backend answered the latest catalog probe, else 0",
            labels=["capability", "url"],
        )
        for capability, url, answered in self._states():
            up.add_metric([capability, url], 1.0 if answered else 0.0)
        yield up
        restarts = CounterMetricFamily(
            "aistack_backend_restarts",
            "Restarts of the backend seen by this edge: a probe read a later process start "
            "time than before",
            labels=["capability", "url"],
        )
        for capability, url, count in self._restarts():
            restarts.add_metric([capability, url], count)
        yield restarts


def _labels(metric: Any, *values: str) -> Any:
    return metric.labels(*values)


class _Requests(Collector):
    """aistack_requests_total and aistack_request_duration_seconds: counted once per
    request, so in plain dicts (no locks: only the event loop counts, and scrapes run on
    it too) and turned into Prometheus' families at scrape time."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], int] = {}
        # Per capability: a count per bucket of _LATENCY_BUCKETS and +Inf, then the sum.
        self._latency: dict[str, list[float]] = {}

    def add(self, capability: str, model: str, outcome: str, elapsed_s: float) -> None:
        key = (capability, model, outcome)
        self._counts[key] = self._counts.get(key, 0) + 1
        latency = self._latency.get(capability)
        if latency is None:
            latency = self._latency[capability] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
        latency[bisect.bisect_left(_LATENCY_BUCKETS, elapsed_s)] += 1  # le: value <= bound
        latency[-1] += elapsed_s

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "aistack_requests",
            "Requests by capability, model and outcome "
            "(2xx, 4xx, 5xx, busy, upstream_down, disconnect)",
            labels=["capability", "model", "outcome"],
        )
        for key, count in self._counts.items():
            requests.add_metric(key, count)
        yield requests
        latency = HistogramMetricFamily(
            "aistack_request_duration_seconds",
            "Time from the request's arrival to its handler's end",
            labels=["capability"],
        )
        bounds = [floatToGoString(b) for b in (*_LATENCY_BUCKETS, float("inf"))]
        for capability, counts in self._latency.items():
            cumulative = zip(bounds, accumulate(counts[:-1]), strict=True)
            latency.add_metric([capability], list(cumulative), sum_value=counts[-1])
        yield latency


class EdgeMetrics:
    def __init__(self, backend_states: BackendStates, backend_restarts: BackendRestarts) -> None:
        # `metric.labels(*values)`, kept: `.labels()` checks its arguments and looks the
        # child up under a lock, which cost more than the update itself. Label values
        # are bounded (catalog ids), and so is this cache.
        self.child: Callable[..., Any] = functools.cache(_labels)
        self.registry = registry = CollectorRegistry()
        self.requests = _Requests()
        registry.register(self.requests)
        self.slot_wait = Histogram(
            "aistack_slot_wait_seconds",
            "Time to acquire the GPU slot (or to be refused it)",
            ["capability"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.slot_lane_wait = Histogram(
            "aistack_slot_lane_wait_seconds",
            "Time to acquire the GPU slot, by lane: interactive requests and realtime "
            "utterances, or background jobs (one acquisition per window)",
            ["lane"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.slot_hold = Histogram(
            "aistack_slot_hold_seconds",
            "Time the GPU slot was held",
            ["capability"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.slot_holder = Gauge(
            "aistack_slot_holder",
            "1 while a request of this edge holds the GPU slot, by its capability and model",
            ["capability", "model"],
            registry=registry,
        )
        self.slot_lost = Counter(
            "aistack_slot_leases_lost",
            "Leases of the GPU slot lost while held: their workloads were stopped",
            ["capability"],
            registry=registry,
        )
        self.backend_stuck = Counter(
            "aistack_backend_stop_overruns",
            "Cancelled jobs that did not stop within AISTACK_STOP_GRACE_S",
            ["capability"],
            registry=registry,
        )
        self.slot_stuck = Gauge(
            "aistack_slot_stuck_since_seconds",
            "Unix time since which this edge holds the GPU slot past AISTACK_STOP_GRACE_S "
            "for a cancelled job that has not stopped, by backend (absent: none)",
            ["backend"],
            registry=registry,
        )
        self.asr_audio = Counter(
            "aistack_asr_audio_seconds",
            "Seconds of audio transcribed",
            ["model"],
            registry=registry,
        )
        self.asr_rtf = Histogram(
            "aistack_asr_real_time_factor",
            "Processing time (slot wait excluded) over audio duration",
            ["model"],
            buckets=_RTF_BUCKETS,
            registry=registry,
        )
        self.tts_characters = Counter(
            "aistack_tts_characters",
            "Characters of input text synthesized",
            ["model"],
            registry=registry,
        )
        self.tts_audio = Counter(
            "aistack_tts_audio_seconds",
            "Seconds of audio synthesized (wav and pcm answers)",
            ["model"],
            registry=registry,
        )
        self.llm_first_token = Histogram(
            "aistack_llm_time_to_first_token_seconds",
            "Time from the request's arrival to the first streamed event",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.llm_chunks = Counter(
            "aistack_llm_stream_chunks",
            "Streamed completion events relayed (about one token each)",
            ["model"],
            registry=registry,
        )
        self.llm_tokens = Counter(
            "aistack_llm_tokens",
            "Tokens by kind (prompt, completion), from the upstream's usage when it sent one",
            ["model", "kind"],
            registry=registry,
        )
        self.realtime_sessions = Gauge(
            "aistack_realtime_sessions_open",
            "Live transcription sessions (Realtime API WebSockets) open now",
            registry=registry,
        )
        self.realtime_audio = Counter(
            "aistack_realtime_audio_received_seconds",
            "Seconds of audio that live transcription sessions appended",
            registry=registry,
        )
        self.realtime_utterances = Counter(
            "aistack_realtime_utterances",
            "Committed utterances of live transcription sessions, by model and outcome "
            "(completed, failed, dropped, disconnect)",
            ["model", "outcome"],
            registry=registry,
        )
        self.realtime_latency = Histogram(
            "aistack_realtime_speech_end_to_completed_seconds",
            "Time from an utterance's end of speech (server VAD) or commit to its "
            "transcript's `completed` event",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.capture_dropped = Counter(
            "aistack_capture_dropped",
            "Exchanges not captured: the capture writer's queue was full",
            registry=registry,
        )
        registry.register(_Backends(backend_states, backend_restarts))

    def record(self, exchange: Exchange, outcome: str, elapsed_s: float) -> None:
        """Count one finished request and what its route noted."""
        child, cap, model = self.child, exchange.capability, exchange.model
        self.requests.add(cap, model, outcome, elapsed_s)
        if exchange.audio_s:
            if cap == "asr":
                child(self.asr_audio, model).inc(exchange.audio_s)
                busy_s = elapsed_s - (exchange.slot_wait_s or 0.0)
                child(self.asr_rtf, model).observe(busy_s / exchange.audio_s)
            elif cap == "tts":
                child(self.tts_audio, model).inc(exchange.audio_s)
        if exchange.characters:
            child(self.tts_characters, model).inc(exchange.characters)
        if exchange.first_token_s is not None:
            child(self.llm_first_token, model).observe(exchange.first_token_s)
        if exchange.chunks:
            child(self.llm_chunks, model).inc(exchange.chunks)
        if exchange.prompt_tokens:
            child(self.llm_tokens, model, "prompt").inc(exchange.prompt_tokens)
        if exchange.completion_tokens:
            child(self.llm_tokens, model, "completion").inc(exchange.completion_tokens)

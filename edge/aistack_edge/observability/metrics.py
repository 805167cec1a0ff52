"""The edge's Prometheus metrics, on a registry of its own (one per application)."""

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aistack_edge.observability.exchange import Exchange

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_RTF_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)

# (capability, url, up) for every configured backend, as of the latest probe.
BackendStates = Callable[[], Iterable[tuple[str, str, bool]]]


class _BackendUp(Collector):
    """aistack_backend_up, read from the catalog's latest probe at scrape time."""

    def __init__(self, states: BackendStates) -> None:
        self._states = states

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "aistack_backend_up",
            "1 when the backend answered the latest catalog probe, else 0",
            labels=["capability", "url"],
        )
        for capability, url, up in self._states():
            family.add_metric([capability, url], 1.0 if up else 0.0)
        yield family


class EdgeMetrics:
    def __init__(self, backend_states: BackendStates) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "aistack_requests",
            "Requests by capability, model and outcome (2xx, 4xx, 5xx, busy, disconnect)",
            ["capability", "model", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "aistack_request_duration_seconds",
            "Time from the request's arrival to its handler's end",
            ["capability"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.slot_wait = Histogram(
            "aistack_slot_wait_seconds",
            "Time to acquire the GPU slot (or to be refused it)",
            ["capability"],
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
        registry.register(_BackendUp(backend_states))

    def record(self, exchange: Exchange, outcome: str, elapsed_s: float) -> None:
        """Count one finished request and what its route noted."""
        cap, model = exchange.capability, exchange.model
        self.requests.labels(cap, model, outcome).inc()
        self.latency.labels(cap).observe(elapsed_s)
        if exchange.audio_s:
            if cap == "asr":
                self.asr_audio.labels(model).inc(exchange.audio_s)
                busy_s = elapsed_s - (exchange.slot_wait_s or 0.0)
                self.asr_rtf.labels(model).observe(busy_s / exchange.audio_s)
            elif cap == "tts":
                self.tts_audio.labels(model).inc(exchange.audio_s)
        if exchange.characters:
            self.tts_characters.labels(model).inc(exchange.characters)
        if exchange.first_token_s is not None:
            self.llm_first_token.labels(model).observe(exchange.first_token_s)
        if exchange.chunks:
            self.llm_chunks.labels(model).inc(exchange.chunks)
        for kind, tokens in (
            ("prompt", exchange.prompt_tokens),
            ("completion", exchange.completion_tokens),
        ):
            if tokens:
                self.llm_tokens.labels(model, kind).inc(tokens)

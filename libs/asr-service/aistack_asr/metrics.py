"""The ASR shell's Prometheus metrics (one backend per process: the default registry)."""

from prometheus_client import Counter, Histogram

from aistack_service.http import requests_counter

REQUESTS = requests_counter("aistack_asr_backend")
TRANSCRIBED = Counter(
    "aistack_asr_backend_audio_seconds", "Seconds of audio transcribed to the end", ["model"]
)
INFERENCE = Histogram(
    "aistack_asr_backend_inference_seconds",
    "Time from the start of a transcription to its last segment",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
MODEL_LOAD = Histogram(
    "aistack_asr_backend_model_load_seconds",
    "Time to load a model",
    ["model"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
EVICTIONS = Counter("aistack_asr_backend_model_evictions", "Models unloaded", ["model"])

"""Piper's own metrics, beside the requests every service counts."""

from prometheus_client import Counter, Histogram

from aistack_service.http import requests_counter

REQUESTS = requests_counter("aistack_tts_piper")
CHARACTERS = Counter("aistack_tts_piper_characters", "Characters of input synthesized", ["voice"])
SYNTHESIS = Histogram(
    "aistack_tts_piper_synthesis_seconds",
    "Time from the request to the last byte of audio",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

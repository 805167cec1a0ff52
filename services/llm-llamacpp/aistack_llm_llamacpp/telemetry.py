"""/metrics: requests, tokens, time to the first token, the model's load time.

A pure ASGI middleware, as the envelope is: it reads what the app sends without holding it
back. Tokens come from the answers themselves: a whole answer's `usage`, or a streamed
answer's chunks (llama.cpp's server streams one chunk per generated token).

Spans need nothing here: once `setup_tracing` installs a provider, FastAPI's own telemetry
opens the SERVER span of each request, child of the caller's `traceparent`, with spans of
the endpoint and the serialization under it."""

import json
import time
from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import Message, Receive, Scope, Send

from aistack_contract.telemetry import exposition
from aistack_llm_llamacpp.asgi import HttpMiddleware
from aistack_service.http import requests_counter

GENERATING = ("/v1/chat/completions", "/v1/completions")
REQUESTS = requests_counter("aistack_llm_llamacpp")
TOKENS = Counter(
    "aistack_llm_llamacpp_tokens", "Tokens read (prompt) and generated (completion)", ["kind"]
)
FIRST_TOKEN = Histogram(
    "aistack_llm_llamacpp_first_token_seconds",
    "Time from a streamed request to its first generated token",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DURATION = Histogram(
    "aistack_llm_llamacpp_request_seconds",
    "Time from a generating request to the last byte of its answer",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
MODEL_LOAD = Gauge("aistack_llm_llamacpp_model_load_seconds", "Time the model took to load")

router = APIRouter()


@router.get("/metrics")
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)


class TelemetryMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        status = 500
        answer = _Answer(began)

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                answer.streamed = any(
                    k == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in message["headers"]
                )
            elif status == 200 and scope["path"] in GENERATING:
                answer.read(message.get("body", b""), more=message.get("more_body", False))
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = scope.get("route")
            REQUESTS.labels(getattr(route, "path", "unmatched"), str(status)).inc()
            if scope["path"] in GENERATING:
                DURATION.observe(time.perf_counter() - began)


class _Answer:
    """Counts the tokens of one generating answer as its body goes by."""

    def __init__(self, began: float) -> None:
        self.began = began
        self.streamed = False
        self._pending = bytearray()
        self._first = True

    def read(self, body: bytes, more: bool) -> None:
        if self.streamed:
            self._pending.extend(body.replace(b"\r\n", b"\n"))
            *events, rest = bytes(self._pending).split(b"\n\n")
            self._pending = bytearray(rest)
            generated = sum(1 for chunk in _chunks(events) if _generated(chunk))
            if generated and self._first:
                FIRST_TOKEN.observe(time.perf_counter() - self.began)
                self._first = False
            TOKENS.labels("completion").inc(generated)
            return
        self._pending.extend(body)
        if not more:
            usage = _json(bytes(self._pending)).get("usage") or {}
            TOKENS.labels("prompt").inc(usage.get("prompt_tokens", 0))
            TOKENS.labels("completion").inc(usage.get("completion_tokens", 0))


def _chunks(events: list[bytes]) -> Iterator[dict]:
    for event in events:
        for line in event.splitlines():
            if line.startswith(b"data: {"):
                yield _json(line[6:])


def _generated(chunk: dict) -> bool:
    """Whether a streamed chunk carries a token (not just the role, or the finish)."""
    choice = (chunk.get("choices") or [{}])[0]
    return bool(choice.get("text") or (choice.get("delta") or {}).get("content"))


def _json(data: bytes) -> dict:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}

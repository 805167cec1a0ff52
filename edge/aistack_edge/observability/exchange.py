"""What one request did, noted as it goes, for the metrics, the access log and capture."""

import contextvars
import time
from dataclasses import dataclass

from aiohttp import web

CAPABILITIES = ("asr", "tts", "llm", "realtime", "models", "other")

# Outcome labels: the status class, or what the status alone does not tell apart.
BUSY = "busy"
"""Refused: the GPU slot is busy (503, kind network)."""
UPSTREAM_DOWN = "upstream_down"
"""A backend, Ollama or the slot's store did not answer (502/503/504, kind network)."""
DISCONNECT = "disconnect"
"""The client went away before its answer was whole."""


@dataclass
class Exchange:
    """One request's notes. Routes fill in what only they know (model, audio, tokens)."""

    request_id: str
    capability: str
    started: float
    model: str = ""
    slot_wait_s: float | None = None
    slot_model: str | None = None
    """The model the slot holder gauge was raised for: the one released, whatever `model`
    became meanwhile (detect-then-route names the routed model after the detector's)."""
    busy: bool = False
    """Refused the GPU slot."""
    lane: str = "interactive"
    """Which lane waited for the slot: `interactive`, or `background` (a job's window)."""
    audio_s: float | None = None
    """ASR: the seconds of audio transcribed; TTS: of audio made, where the format says."""
    characters: int | None = None
    first_token_s: float | None = None
    chunks: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    capture: bool = False
    error_kind: str | None = None
    """The envelope's kind, when the edge answered with one."""
    answered: int | None = None
    """The status of an answer whose last byte has left: what the client got, whatever
    the handler does after it (a client may close at once, cancelling the handler)."""

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


_CURRENT: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "aistack_exchange", default=None
)
_KEY = "aistack_exchange"


def begin(request: web.Request, request_id: str) -> tuple[Exchange, contextvars.Token]:
    """Start `request`'s exchange and make it the current one; the token resets it."""
    exchange = Exchange(request_id, capability_of(request.path), time.perf_counter())
    request[_KEY] = exchange
    return exchange, _CURRENT.set(exchange)


def begin_part(
    request_id: str, capability: str, started: float
) -> tuple[Exchange, contextvars.Token]:
    """An exchange of its own for a part of a long request (an utterance of a realtime
    session: a GPU workload), made the current one of this task; the token resets it."""
    exchange = Exchange(request_id, capability, started)
    return exchange, _CURRENT.set(exchange)


def end(token: contextvars.Token) -> None:
    _CURRENT.reset(token)


def of(request: web.Request) -> Exchange:
    """The exchange of `request` (a throwaway one outside the observing middleware)."""
    found = request.get(_KEY)
    return found if found is not None else Exchange("", "other", time.perf_counter())


def current() -> Exchange | None:
    """The exchange of the request this task serves, if any."""
    return _CURRENT.get()


def capability_of(path: str) -> str:
    if path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        return "asr"
    if path.startswith("/v1/audio/"):
        return "tts"
    if path == "/v1/chat/completions":
        return "llm"
    if path == "/v1/realtime":
        return "realtime"  # the session; each of its utterances is an `asr` part
    if path == "/v1/models" or path.startswith("/v1/models/"):
        return "models"
    return "other"


def outcome_of(status: int, record: Exchange) -> str:
    """`busy` for a slot-busy 503, `upstream_down` for a gateway error of kind network,
    else the status class (`2xx`, `4xx`, `5xx`)."""
    if record.busy:
        return BUSY
    if status in (502, 503, 504) and record.error_kind == "network":
        return UPSTREAM_DOWN
    return f"{status // 100}xx"

"""What one realtime client may cost the edge: the size of a message, the shape of the
JSON in it, and how many sessions it (and everyone) may hold open.

A message is at most an append's 15 MiB of base64 audio (OpenAI's own limit) and a
little more for the event around it. Its JSON is checked before it is parsed: an event
of this protocol is a few objects deep and a few dozen values wide, while a hostile
message of nested or comma-separated empties (`[[[[…`, `[],[],…`) costs its parser
twenty times its size, on the event loop. So a message with more than MAX_CONTAINERS
objects and arrays, or more than MAX_ITEMS commas, is refused unparsed; a large one is
checked and parsed on a worker thread, so that the loop goes on answering /health and
renewing the GPU slot's lease meanwhile.
"""

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from aistack_edge import peers
from aistack_edge.errors import malformed, overflow
from aistack_edge.state import SETTINGS

MAX_CONTAINERS = 256
"""Objects and arrays in one event (a session.update has about ten)."""
MAX_ITEMS = 4096
"""Commas in one event: its values and members (base64 has none)."""
OFF_LOOP_CHARS = 64 * 1024
"""A message longer than this is checked and parsed on a worker thread."""
EVENT_SLACK_BYTES = 64 * 1024
"""What a message may carry besides its base64 audio (the event's other fields)."""

CLIENTS = web.AppKey("realtime_clients", Counter)
"""Open sessions by client address (create_app sets it up)."""


def max_message_bytes(request: web.Request) -> int:
    """The largest WebSocket message: AISTACK_REALTIME_MAX_MESSAGE_MB of base64 audio
    and the rest of its event."""
    return int(request.app[SETTINGS].realtime_max_message_mb * 2**20) + EVENT_SLACK_BYTES


async def parse_event(text: str) -> Any:
    """A client event's JSON, within the bounds above (400 `malformed` past them)."""
    if len(text) > OFF_LOOP_CHARS:
        return await asyncio.to_thread(_parse, text)
    return _parse(text)


def _parse(text: str) -> Any:
    containers = text.count("{") + text.count("[")
    if containers > MAX_CONTAINERS:
        raise malformed(
            f"an event has at most {MAX_CONTAINERS} objects and arrays; this one {containers}"
        )
    if text.count(",") > MAX_ITEMS:
        raise malformed(f"an event has at most {MAX_ITEMS} values and members")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise malformed(f"an event must be JSON: {exc}") from exc


def refusal(request: web.Request, client: str) -> Exception | None:
    """Why a new session of `client` is refused now (too many open: its own, or
    everyone's), else None."""
    settings, open_by = request.app[SETTINGS], request.app[CLIENTS]
    if open_by[client] >= settings.realtime_max_sessions_per_client:
        return overflow(
            f"this client has {open_by[client]} realtime sessions open, the most one may "
            "(AISTACK_REALTIME_MAX_SESSIONS_PER_CLIENT); close one and retry"
        )
    if open_by.total() >= settings.realtime_max_sessions:
        return overflow(
            f"{open_by.total()} realtime sessions are open, the most this edge holds "
            "(AISTACK_REALTIME_MAX_SESSIONS); retry later"
        )
    return None


@contextlib.contextmanager
def counted(request: web.Request, client: str) -> Iterator[None]:
    """A session of `client` is counted open within this block."""
    open_by = request.app[CLIENTS]
    open_by[client] += 1
    try:
        yield
    finally:
        open_by[client] -= 1
        if open_by[client] <= 0:
            del open_by[client]


def client_of(request: web.Request) -> str:
    """The client's address (behind a trusted proxy, the one it forwards), read while
    the connection is open; unknown clients share one count."""
    address = peers.client(request, request.app[SETTINGS].trusted_proxies)
    return str(address) if address is not None else "unknown"

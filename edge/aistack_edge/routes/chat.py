"""POST /v1/chat/completions: proxied to the LLM upstream that serves the model.

The body passes through unchanged, but for `max_completion_tokens`, also sent as
`max_tokens` (`llm.with_max_tokens`). A streamed answer is relayed event by event as it
arrives, read at the upstream's pace (a slow client reads it from the edge's outbox:
`relay`); the GPU slot is held until its end, and a client that hangs up closes the
upstream request at once. Ollama's OpenAI-compatible endpoint ignores `keep_alive`: once
an answer of Ollama's has ended, its model's timer is set through Ollama's own API with
the request's `keep_alive` (else AISTACK_LLM_KEEP_ALIVE)."""

import contextlib
import functools

import aiohttp
from aiohttp import web

from aistack_contract.errors import AistackError, ErrorEnvelope, ErrorKind
from aistack_edge.bodies import parse_json, read_json_body
from aistack_edge.catalog import Entry
from aistack_edge.errors import malformed, quoted, unavailable
from aistack_edge.hotswap import keep_loaded
from aistack_edge.observability import exchange
from aistack_edge.observability.tracing import backend_call
from aistack_edge.observability.usage import note_events, note_usage
from aistack_edge.relay import deliver, outbox
from aistack_edge.state import CATALOG, SESSION, SETTINGS
from aistack_edge.upstreams import llm
from aistack_edge.upstreams.http import end_to_end
from aistack_edge.workload import Workload, continue_unless_busy, gpu_workload, refuse_if_busy

routes = web.RouteTableDef()

# Set by the answer itself, never taken from the upstream's.
_OWN_HEADERS = ("content-length", "content-encoding", "date", "server")
# The last event of an OpenAI chat stream.
_DONE = b"data: [DONE]"


def read_chat(body: bytes) -> dict:
    """The request as JSON, checked for what routing needs: `model` and `messages`."""
    chat = parse_json(body)
    if not isinstance(chat, dict):
        raise malformed("the body must be a JSON object")
    if not isinstance(chat.get("model"), str) or not chat["model"]:
        raise malformed("`model` is required: the id of an LLM model from /v1/models")
    if not isinstance(chat.get("messages"), list) or not chat["messages"]:
        raise malformed("`messages` is required: a non-empty list of chat messages")
    limit = chat.get("max_completion_tokens")
    if limit is not None and (type(limit) is not int or limit < 1):
        raise malformed("`max_completion_tokens` must be a positive integer")
    return chat


async def _entry(app: web.Application, model: str) -> Entry:
    """The entry of the LLM upstream that serves `model`."""
    settings, catalog = app[SETTINGS], app[CATALOG]
    entry = await catalog.find("llm", model)
    if entry is None:
        catalog.forget()  # the listing may predate a model just pulled or an upstream just up
        entry = await catalog.find("llm", model)
    if entry is not None:
        return entry
    down = await catalog.unanswered("llm")
    if down:
        where = ", ".join(f"{_provider(app, url)} at {url}" for url in down)
        raise AistackError(
            ErrorKind.NETWORK,
            f"no LLM upstream that answers serves {quoted(model)}; not answering: {where}",
            _provider(app, down[0]),
        )
    served = [e.card.id for e in await catalog.of_capability("llm")]
    if not served and not settings.llm_upstreams and not settings.ollama_url:
        raise unavailable("no LLM is configured (AISTACK_LLM_UPSTREAMS, AISTACK_OLLAMA_URL)")
    raise malformed(
        f"unknown model {quoted(model)}; the LLM models served: {', '.join(served) or 'none'}"
    )


def _provider(app: web.Application, url: str) -> str:
    """The provider of an upstream that did not answer (so did not name itself)."""
    settings = app[SETTINGS]
    return "Ollama" if url == settings.ollama_url else settings.llm_provider


@routes.post("/v1/chat/completions", expect_handler=continue_unless_busy)
async def chat_completions(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    refuse_if_busy(request)
    body = await read_json_body(request, settings.max_json_bytes)
    chat = read_chat(body)
    body = llm.with_max_tokens(body, chat)
    entry = await _entry(app, chat["model"])
    last_step = None
    if entry.upstream == settings.ollama_url:
        keep_alive = chat.get("keep_alive", settings.llm_keep_alive)
        last_step = functools.partial(
            keep_loaded, app[SESSION], entry.upstream, entry.card.id, keep_alive
        )
    async with gpu_workload(request, "llm", entry, last_step) as work:
        trace_headers: dict[str, str] = {}
        with backend_call("llm.chat", trace_headers, entry.upstream):
            try:
                response = await llm.post_chat(
                    app[SESSION],
                    entry,
                    body,
                    work.job_id,
                    settings.backend_timeout_s,
                    trace_headers,
                )
            except AistackError as error:
                if error.body.kind is ErrorKind.NETWORK:
                    app[CATALOG].forget()
                raise
            try:
                if response.content_type == "text/event-stream":
                    answer = await _relay(request, response, entry, work)
                else:
                    data = await llm.read(response, entry)
                    await work.finish()
                    note_usage(exchange.of(request), data)
                    headers = end_to_end(response.headers, drop=_OWN_HEADERS)
                    whole = web.Response(body=data, status=response.status, headers=headers)
                    answer = await deliver(request, whole)
            finally:
                response.close()
        return answer


async def _relay(
    request: web.Request, response: aiohttp.ClientResponse, entry: Entry, work: Workload
) -> web.StreamResponse:
    """The upstream's events to the client as they come; a broken upstream ends the
    stream with one `data: {"error": {...}}` event."""
    relay = web.StreamResponse(
        status=response.status, headers=end_to_end(response.headers, drop=_OWN_HEADERS)
    )
    await relay.prepare(request)
    record = exchange.of(request)
    async with outbox(request, relay) as box:
        try:
            with work.guard():
                async with contextlib.aclosing(llm.events(response, entry)) as events:
                    async for chunk in work.watch(events):
                        note_events(record, chunk)
                        if chunk.rstrip().endswith(_DONE):
                            await work.finish()  # a client may send its next request now
                        await box.put(chunk)
        except AistackError as error:
            envelope = ErrorEnvelope(error=error.body).model_dump_json()
            await box.put(f"data: {envelope}\n\n".encode())
    return relay

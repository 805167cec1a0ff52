"""POST /v1/chat/completions: proxied to the LLM upstream that serves the model.

The body passes through unchanged, but for `keep_alive`, added when absent. A
streamed answer is relayed event by event as it arrives; the GPU slot is held until
its end, and a client that hangs up closes the upstream request at once."""

import contextlib
import json

import aiohttp
from aiohttp import web

from aistack_contract.errors import AistackError, ErrorEnvelope, ErrorKind
from aistack_edge.errors import malformed, unavailable
from aistack_edge.hotswap import make_room
from aistack_edge.observability import exchange
from aistack_edge.observability.tracing import backend_call
from aistack_edge.observability.usage import note_events, note_usage
from aistack_edge.state import CATALOG, SESSION, SETTINGS, SLOT
from aistack_edge.upstreams import llm
from aistack_edge.upstreams.http import end_to_end

routes = web.RouteTableDef()

# Set by the answer itself, never taken from the upstream's.
_OWN_HEADERS = ("content-length", "content-encoding", "date", "server")


def read_chat(body: bytes) -> dict:
    """The request as JSON, checked for what routing needs: `model` and `messages`."""
    try:
        chat = json.loads(body.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise malformed(f"the body is not UTF-8 JSON: {exc}") from None
    if not isinstance(chat, dict):
        raise malformed("the body must be a JSON object")
    if not isinstance(chat.get("model"), str) or not chat["model"]:
        raise malformed("`model` is required: the id of an LLM model from /v1/models")
    if not isinstance(chat.get("messages"), list) or not chat["messages"]:
        raise malformed("`messages` is required: a non-empty list of chat messages")
    return chat


def with_keep_alive(body: bytes, keep_alive: str) -> bytes:
    """`body`, a JSON object with members, with `keep_alive` added as its first member;
    every other byte as the client sent it."""
    start = body.index(b"{") + 1
    member = json.dumps({"keep_alive": keep_alive})[1:-1].encode()
    return body[:start] + member + b"," + body[start:]


async def _upstream(app: web.Application, model: str) -> llm.Upstream:
    settings, catalog = app[SETTINGS], app[CATALOG]
    entry = await catalog.find("llm", model)
    if entry is None:
        catalog.forget()  # the listing may predate a model just pulled or an upstream just up
        entry = await catalog.find("llm", model)
    if entry is not None:
        return llm.Upstream(entry.upstream, _provider(app, entry.upstream))
    down = await catalog.unanswered("llm")
    if down:
        where = ", ".join(f"{_provider(app, url)} at {url}" for url in down)
        raise AistackError(
            ErrorKind.NETWORK,
            f"no LLM upstream that answers serves {model!r}; not answering: {where}",
            _provider(app, down[0]),
        )
    served = [e.card.id for e in await catalog.of_capability("llm")]
    if not served and not settings.llm_upstreams and not settings.ollama_url:
        raise unavailable("no LLM is configured (AISTACK_LLM_UPSTREAMS, AISTACK_OLLAMA_URL)")
    raise malformed(
        f"unknown model {model!r}; the LLM models served: {', '.join(served) or 'none'}"
    )


def _provider(app: web.Application, url: str) -> str:
    settings = app[SETTINGS]
    return "Ollama" if url == settings.ollama_url else settings.llm_provider


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    app[SLOT].refuse_if_busy()  # before the body, which would be read for nothing
    body = await request.read()
    chat = read_chat(body)
    upstream = await _upstream(app, chat["model"])
    record = exchange.of(request)
    record.model = chat["model"]
    if "keep_alive" not in chat:
        body = with_keep_alive(body, settings.llm_keep_alive)
    request_id = request["request_id"]
    async with app[SLOT].hold(f"llm {chat['model']} (request {request_id})"):
        await make_room(app, "llm")
        trace_headers: dict[str, str] = {}
        with backend_call("llm.chat", trace_headers, upstream.url):
            try:
                response = await llm.post_chat(
                    app[SESSION],
                    upstream,
                    body,
                    request_id,
                    settings.backend_timeout_s,
                    trace_headers,
                )
            except AistackError as error:
                if error.body.kind is ErrorKind.NETWORK:
                    app[CATALOG].forget()
                raise
            try:
                if response.content_type == "text/event-stream":
                    return await _relay(request, response, upstream)
                answer = await llm.read(response, upstream)
                note_usage(record, answer)
                headers = end_to_end(response.headers, drop=_OWN_HEADERS)
                return web.Response(body=answer, status=response.status, headers=headers)
            finally:
                response.close()


async def _relay(
    request: web.Request, response: aiohttp.ClientResponse, upstream: llm.Upstream
) -> web.StreamResponse:
    """The upstream's events to the client as they come; a broken upstream ends the
    stream with one `data: {"error": {...}}` event."""
    relay = web.StreamResponse(
        status=response.status, headers=end_to_end(response.headers, drop=_OWN_HEADERS)
    )
    await relay.prepare(request)
    record = exchange.of(request)
    try:
        async with contextlib.aclosing(llm.events(response, upstream)) as events:
            async for chunk in events:
                note_events(record, chunk)
                await relay.write(chunk)
    except AistackError as error:
        envelope = ErrorEnvelope(error=error.body).model_dump_json()
        await relay.write(f"data: {envelope}\n\n".encode())
    await relay.write_eof()
    return relay

"""The client of OpenAI-compatible chat upstreams: llama.cpp's server, vLLM, Ollama's /v1."""

import json
import re
from collections.abc import AsyncIterator

import aiohttp

from aistack_contract.errors import AistackError, ErrorKind
from aistack_edge.catalog import Entry
from aistack_edge.middleware import REQUEST_ID
from aistack_edge.upstreams.http import answer_head, unreachable, upstream_error

CHAT_PATH = "/v1/chat/completions"
# The end of one server-sent event: a blank line, in any of SSE's three line endings.
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def broken(backend: Entry, exc: BaseException) -> AistackError:
    detail = str(exc) or type(exc).__name__
    return AistackError(
        ErrorKind.NETWORK,
        f"{backend.provider} at {backend.upstream} broke off the completion: {detail}",
        backend.provider,
    )


def with_max_tokens(body: bytes, chat: dict) -> bytes:
    """`body`, with `max_tokens` set to `max_completion_tokens` when that is given.

    The newer name is ignored by the embedded LLM (llama-cpp-python's server: its
    `CreateChatCompletionRequest`, llama_cpp/server/types.py, has only `max_tokens`) and
    by Ollama's OpenAI endpoint (its `ChatCompletionRequest`, openai/openai.go, likewise);
    vLLM takes either, the newer first. Any other body passes on byte for byte."""
    limit = chat.get("max_completion_tokens")
    if limit is None or chat.get("max_tokens") == limit:
        return body
    return json.dumps({**chat, "max_tokens": limit}, ensure_ascii=False).encode()


async def post_chat(
    session: aiohttp.ClientSession,
    backend: Entry,
    body: bytes,
    request_id: str,
    timeout_s: float,
    trace_headers: dict[str, str] | None = None,
) -> aiohttp.ClientResponse:
    """POST `body` to the upstream's chat endpoint; its 2xx response, body unread.

    The caller closes the response: closing it before its end drops the connection,
    which is how the upstream learns to stop generating."""
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",  # relayed as is, never re-encoded
        REQUEST_ID: request_id,
        **(trace_headers or {}),
    }
    timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_s)
    try:
        sent = session.post(
            backend.upstream + CHAT_PATH, data=body, headers=headers, timeout=timeout
        )
        response = await answer_head(sent, timeout_s)
        if response.ok:
            return response
        async with response:
            raise await upstream_error(response, backend.provider)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unreachable(backend.provider, backend.upstream, exc) from exc


async def read(response: aiohttp.ClientResponse, backend: Entry) -> bytes:
    """A whole (non-streamed) answer."""
    try:
        return await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise broken(backend, exc) from exc


async def events(response: aiohttp.ClientResponse, backend: Entry) -> AsyncIterator[bytes]:
    """The upstream's server-sent events as soon as each arrives: only whole events,
    several at once where several came together. A broken stream raises the envelope."""
    pending = b""
    try:
        async for chunk in response.content.iter_any():
            pending += chunk
            end = max((match.end() for match in _EVENT_END.finditer(pending)), default=0)
            if end:
                yield pending[:end]
                pending = pending[end:]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise broken(backend, exc) from exc
    if pending.strip():
        yield pending + b"\n\n"

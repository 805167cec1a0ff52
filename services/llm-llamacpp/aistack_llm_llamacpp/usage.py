"""`stream_options: {"include_usage": true}` on streamed completions, as OpenAI answers it.

llama.cpp's server ignores the option: its streams carry no token counts, so a client
that accounts tokens (the openai SDK, LangChain) sees none. Here a streamed request that
asks for them gets, before `data: [DONE]`, one more chunk with empty `choices` and the
`usage` of the whole answer. The counts come from the model's own generation loop: the
prompt's tokens as llama.cpp tokenized them, and each token it generated — the same
numbers as its non-streamed `usage`.
"""

import contextvars
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
from starlette.types import Message, Receive, Scope, Send

from aistack_llm_llamacpp.asgi import HttpMiddleware

_STREAMED = frozenset({"/v1/chat/completions", "/v1/completions"})
_DONE = b"data: [DONE]"


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def public(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }


_CURRENT: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("usage", default=None)


def count_generated_tokens() -> None:
    """Make llama.cpp's generation loop count, for the request it serves, the prompt's
    tokens and each token it yields (the server's worker threads inherit the request's
    context variables)."""
    generate = llama_cpp.Llama.generate
    if getattr(generate, "counts_usage", False):
        return

    def counted(self: llama_cpp.Llama, tokens: Sequence[int], *args: Any, **kw: Any) -> Iterator:
        usage = _CURRENT.get()
        if usage is not None:
            usage.prompt_tokens = len(tokens)
        for token in generate(self, tokens, *args, **kw):
            if usage is not None:
                usage.completion_tokens += 1
            yield token

    counted.counts_usage = True  # type: ignore[attr-defined]
    llama_cpp.Llama.generate = counted  # type: ignore[method-assign]


class UsageMiddleware(HttpMiddleware):
    """Adds the usage chunk to a streamed completion whose request asks for it."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] not in _STREAMED or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages, body = await _whole_body(receive)
        if not _asks_usage(body):
            await self.app(scope, _replay(messages, receive), send)
            return
        usage = Usage()
        token = _CURRENT.set(usage)
        try:
            await self.app(scope, _replay(messages, receive), _with_usage(send, usage))
        finally:
            _CURRENT.reset(token)


async def _whole_body(receive: Receive) -> tuple[list[Message], bytes]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that first gives back the messages read already."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _asks_usage(body: bytes) -> bool:
    try:
        request = json.loads(body)
    except ValueError:
        return False  # the server answers the bad body itself
    if not isinstance(request, dict) or request.get("stream") is not True:
        return False
    options = request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _with_usage(send: Send, usage: Usage) -> Send:
    """`send` that writes the usage chunk before the stream's `data: [DONE]`, shaped like
    the stream's last chunk (its id, created time and model)."""
    last = b""  # the latest chunk's JSON, parsed only once the stream ends

    async def sending(message: Message) -> None:
        nonlocal last
        if message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            at = body.find(_DONE)
            for line in (body[:at] if at >= 0 else body).splitlines():
                if line.startswith(b"data: {"):
                    last = line[6:]
            if at >= 0 and last:
                shape: dict[str, Any] = json.loads(last)
                chunk = {key: shape.get(key) for key in ("id", "object", "created", "model")}
                chunk |= {"choices": [], "usage": usage.public()}
                extra = b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
                message = {**message, "body": body[:at] + extra + body[at:]}
        await send(message)

    return sending

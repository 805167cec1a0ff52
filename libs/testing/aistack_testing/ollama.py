"""A fake Ollama for the tests (Ollama cannot run here), written from Ollama's own source:

- `server/routes.go`: `GenerateHandler` and `ChatHandler` (an empty prompt or no messages
  with `keep_alive` 0 calls `sched.expireRunner` and answers `done_reason: "unload"` at
  once; an empty prompt otherwise loads the model and answers `done_reason: "load"`; an
  unknown model is 404 `{"error": "model '<name>' not found"}`, a body it cannot bind
  400 `{"error": "<the bind error>"}`), `PsHandler` (the loaded models, the longest left
  to live first) and `ListHandler` (`/api/tags`);
- `server/sched.go`: `expireRunner` only hands the runner to the expiry loop, which tears
  it down afterwards: the model stays in `/api/ps` (expiring now) until the runner is
  gone. A model not loaded is loaded first (the cold-load delay); the keep_alive of the
  request scheduled last (else the server's default, five minutes) becomes the runner's
  session duration, whose timer starts when no request uses the runner any more;
- `api/types.go`: `Duration.UnmarshalJSON`, how `keep_alive` is read: a number of
  seconds, or a Go duration string (`time.ParseDuration`: "1h30m", "250ms", "-1s"); a
  negative one means forever; any other JSON type is refused;
- `middleware/openai.go` and `openai/openai.go`: `/v1/chat/completions`, whose request
  type has no `keep_alive` (the server's default applies), and whose errors are OpenAI's
  shape, `{"error": {"message", "type", "param", "code"}}`, the type from the status
  (`invalid_request_error` for 400, `not_found_error` for 404, else `api_error`).

The chat itself is a real model: the fake relays the chats to an OpenAI-compatible
`upstream` (llama.cpp's server in the tests): `/v1/chat/completions` as it streams, the
native endpoints whole, as Ollama answers them with `"stream": false` (the gateway sends
them no chat, only loads and unloads).
"""

import asyncio
import json
import math
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from aistack_testing.doubles import Served

DEFAULT_KEEP_ALIVE_S = 300.0  # Ollama's OLLAMA_KEEP_ALIVE default, five minutes
FOREVER = math.inf  # a negative keep_alive: time.Duration(math.MaxInt64), about 292 years
# time.ParseDuration's units, in seconds.
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class BadRequest(ValueError):
    """A body Ollama's JSON binding refuses: a 400 with its message."""


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds: "1h30m", "1.5h", "-1s", "0"."""
    sign, rest = (-1, text[1:]) if text[:1] == "-" else (1, text.removeprefix("+"))
    if rest == "0":
        return 0.0
    if re.fullmatch(r"[\d.]+", rest):
        raise BadRequest(f'time: missing unit in duration "{text}"')
    if not rest or _PART.sub("", rest):
        raise BadRequest(f'time: invalid duration "{text}"')
    return sign * sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(rest))


def keep_alive_seconds(value: object) -> float:
    """api.Duration's UnmarshalJSON: seconds as a number or a duration string, negative
    meaning forever."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"Unsupported type: '{type(value).__name__}'")
    seconds = parse_duration(value) if isinstance(value, str) else float(value)
    return FOREVER if seconds < 0 else seconds


def _timestamp(at: float) -> str:
    if at == FOREVER:
        return "2318-08-29T04:31:22.2547758Z"  # what now + MaxInt64 nanoseconds looks like
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _openai_error(status: int, message: str) -> web.Response:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    error = {"message": message, "type": kind, "param": None, "code": None}
    return web.json_response({"error": error}, status=status)


class FakeOllama(Served):
    """Ollama's routes that the gateway (and its idle check) reaches: `/api/tags`, `/api/ps`,
    `/api/version`, `/api/generate`, `/api/chat` and `/v1/chat/completions`.

    `loaded` maps each loaded model to when it expires (epoch seconds, `FOREVER`); a test
    may set it. `unloads` holds the bodies of the unload requests, `bodies` those of the
    chats relayed, `load_s` is a cold load's delay and `unload_s` how long a runner takes
    to go after its unload was answered."""

    def __init__(
        self,
        models: Iterable[str] = ("qwen3:4b",),
        upstream: str | None = None,
        load_s: float = 0.0,
        unload_s: float = 0.2,
    ) -> None:
        self.models = list(models)
        self.upstream = upstream
        self.load_s, self.unload_s = load_s, unload_s
        self.loaded: dict[str, float] = {}
        self.unloads: list[dict] = []
        self.bodies: list[bytes] = []
        self.loads = 0  # cold loads
        self._teardowns: set[asyncio.Task] = set()
        self._session: dict[str, float] = {}  # each runner's keep_alive
        self._users: dict[str, int] = {}  # each runner's requests in flight

    # --- serving -----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/tags", self.tags)
        app.router.add_get("/api/ps", self.ps)
        app.router.add_get("/api/version", self.version)
        app.router.add_post("/api/generate", self.generate)
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/v1/chat/completions", self.openai_chat)

    def app(self) -> web.Application:
        app = web.Application()
        self.add_routes(app)
        return app

    async def stop(self) -> None:
        for task in list(self._teardowns):
            task.cancel()
        await super().stop()

    # --- the scheduler -------------------------------------------------------------------

    async def _acquire(self, model: str, seconds: float) -> None:
        """scheduleRunner: a model not loaded is loaded first (the cold-load delay); the
        request's keep_alive becomes the runner's session duration, whichever request
        was scheduled last."""
        if model not in self.loaded:
            self.loads += 1
            await asyncio.sleep(self.load_s)
        self.loaded[model] = FOREVER  # in use: its timer starts when the last user is done
        self._session[model] = seconds
        self._users[model] = self._users.get(model, 0) + 1

    def _release(self, model: str) -> None:
        """A request done: with no other user left, the expiry timer starts."""
        self._users[model] -= 1
        if self._users[model] > 0:
            return
        seconds = self._session[model]
        if seconds == 0:
            self._expire(model)
        else:
            self.loaded[model] = time.time() + seconds if seconds != FOREVER else FOREVER

    def _expire(self, model: str) -> None:
        """expireRunner: expiring now, torn down by the expiry loop afterwards (at once,
        or when its last user is done)."""
        if model not in self.loaded:
            return
        self._session[model] = 0
        if self._users.get(model, 0) > 0:
            return
        self.loaded[model] = time.time()
        task = asyncio.get_running_loop().create_task(self._tear_down(model))
        self._teardowns.add(task)
        task.add_done_callback(self._teardowns.discard)

    async def _tear_down(self, model: str) -> None:
        await asyncio.sleep(self.unload_s)
        if self._users.get(model, 0) == 0:
            self.loaded.pop(model, None)

    # --- routes ----------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> dict:
        raw = await request.read()
        if not raw:
            raise BadRequest("missing request body")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BadRequest(str(exc)) from None
        if not isinstance(body, dict):
            raise BadRequest("json: cannot unmarshal into Go value of type api.GenerateRequest")
        return body

    def _unknown(self, model: object) -> web.Response | None:
        if model in self.models:
            return None
        return web.json_response({"error": f"model '{model}' not found"}, status=404)

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [self._entry(name) for name in self.models]})

    async def ps(self, request: web.Request) -> web.Response:
        running = sorted(self.loaded.items(), key=lambda item: -item[1])
        models = [
            {**self._entry(name), "expires_at": _timestamp(at), "size_vram": 1_000_000_000,
             "context_length": 4096}
            for name, at in running
        ]  # fmt: skip
        return web.json_response({"models": models})

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.11.10"})

    def _entry(self, name: str) -> dict:
        return {
            "name": name,
            "model": name,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 1_000_000_000,
            "digest": "0" * 64,
            "details": {"format": "gguf", "family": "llama", "parameter_size": "1B"},
        }

    async def generate(self, request: web.Request) -> web.Response:
        return await self._native(request, "prompt")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._native(request, "messages")

    async def _native(self, request: web.Request, field: str) -> web.Response:
        """`/api/generate` and `/api/chat`: an empty prompt (no messages) loads or, with
        `keep_alive` 0, unloads; otherwise the chat, relayed."""
        try:
            body = await self._body(request)
            keep = body.get("keep_alive")
            seconds = DEFAULT_KEEP_ALIVE_S if keep is None else keep_alive_seconds(keep)
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        model = body.get("model")
        if (unknown := self._unknown(model)) is not None:
            return unknown
        answer = {"model": model, "created_at": _timestamp(time.time()), "done": True}
        if field == "messages":
            answer["message"] = {"role": "assistant", "content": ""}
        else:
            answer["response"] = ""
        if not body.get(field):
            if keep is not None and seconds == 0:
                self.unloads.append(body)
                self._expire(model)
                return web.json_response({**answer, "done_reason": "unload"})
            await self._acquire(model, seconds)
            self._release(model)
            return web.json_response({**answer, "done_reason": "load"})
        messages = body[field]
        if field == "prompt":
            messages = [{"role": "user", "content": body[field]}]
        reply = await self._complete(model, {"model": model, "messages": messages}, seconds)
        content = reply["choices"][0]["message"]["content"]
        if field == "messages":
            answer["message"]["content"] = content
        else:
            answer["response"] = content
        return web.json_response({**answer, "done_reason": "stop"})

    async def _complete(self, model: str, body: dict, keep_s: float) -> dict:
        await self._acquire(model, keep_s)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{self.upstream}/v1/chat/completions", json=body) as r,
            ):
                return await r.json()
        finally:
            self._release(model)

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        """The OpenAI-compatible chat, relayed as it streams; no `keep_alive` here."""
        raw = await request.read()
        try:
            model = json.loads(raw)["model"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            return _openai_error(400, str(exc))
        if model not in self.models:
            return _openai_error(404, f"model '{model}' not found")
        self.bodies.append(raw)
        await self._acquire(model, DEFAULT_KEEP_ALIVE_S)
        try:
            return await self._relay(request, raw)
        finally:
            self._release(model)

    async def _relay(self, request: web.Request, raw: bytes) -> web.StreamResponse:
        headers = {"Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.upstream}/v1/chat/completions", data=raw, headers=headers) as r,
        ):
            answer = web.StreamResponse(
                status=r.status, headers={"Content-Type": r.headers["Content-Type"]}
            )
            await answer.prepare(request)
            async for chunk in r.content.iter_any():
                await answer.write(chunk)
            await answer.write_eof()
            return answer

"""A fake vLLM-Omni serving Qwen3-TTS (its weights and a GPU cannot be had here), written
from vLLM-Omni's own source:

- `vllm_omni/entrypoints/openai/api_server.py`: the routes, on vLLM's own app
  (`build_app`): `POST /v1/audio/speech` (and the chat route this fake leaves out), with
  vLLM's `GET /v1/models`, `GET /health`, `GET /version` and the Prometheus `GET /metrics`;
  any other path is FastAPI's 404 `{"detail": "Not Found"}`, another method on a known
  path its 405 `{"detail": "Method Not Allowed"}`;
- `vllm_omni/entrypoints/openai/serving_speech.py`: `_validate_tts_request` (empty input,
  the language list, the speaker of a CustomVoice task, the Base task's `ref_audio` as a
  URL or data URL, `ref_text` only for Base, VoiceDesign's instructions), each a 400 made
  by `create_error_response`; the audio is made whole, then answered in one body
  (`audio/wav` at the model's 24 kHz);
- `vllm_omni/entrypoints/openai/protocol/audio.py`: the request's fields;
- vLLM's `ErrorResponse`: `{"error": {"message", "type", "param", "code"}}` since vLLM
  0.10.2, and the flat `{"object": "error", "message", "type", "param", "code"}` before
  (`flat_errors=True`);
- vLLM's metrics: the `vllm:num_requests_running` gauge, labelled with the model name.

The audio is real: a WAV of a tone as long as the text would take to say, so a client can
decode it and count its seconds.
"""

import asyncio
import io
import json
import math
import struct
import wave

from aiohttp import web

from aistack_testing.doubles import Served

RATE = 24_000  # Qwen3-TTS' 12 Hz tokenizer decodes to 24 kHz
LANGUAGES = {"Auto", "Chinese", "English", "Japanese", "Korean", "German", "French"}
LANGUAGES |= {"Russian", "Portuguese", "Spanish", "Italian"}
SPEAKERS = {"vivian", "serena", "uncle_fu", "dylan", "eric", "ryan", "aiden", "ono_anna", "sohee"}
MAX_INSTRUCTIONS = 500


def tone_wav(seconds: float, rate: int = RATE) -> bytes:
    """A 16-bit mono WAV of a 220 Hz tone lasting `seconds`."""
    frames = int(seconds * rate)
    samples = (int(8000 * math.sin(2 * math.pi * 220 * n / rate)) for n in range(frames))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{frames}h", *samples))
    return out.getvalue()


class FakeVllmOmni(Served):
    """vLLM-Omni serving `model` (a Qwen3-TTS CustomVoice or Base checkpoint). `requests`
    holds (method, path with query, headers, body) of every request it got; `running` is
    the speech requests in flight (what `/metrics` reports); `synthesis_s` how long each
    one computes before its answer. `cut_after`, when set, is a fault and not vLLM's
    behaviour: a server that dies mid-answer, its connection dropped after that many
    bytes of the audio."""

    def __init__(self, model: str, flat_errors: bool = False, synthesis_s: float = 0.0) -> None:
        self.model = model
        self.flat_errors = flat_errors
        self.synthesis_s = synthesis_s
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.running = 0
        self.cut_after: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=0, middlewares=[self._fastapi_errors])
        app.router.add_post("/v1/audio/speech", self.speech)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/version", self.version)
        app.router.add_get("/metrics", self.metrics)
        return app

    @web.middleware
    async def _fastapi_errors(self, request: web.Request, handler) -> web.StreamResponse:
        """Every request recorded; aiohttp's 404 and 405 in FastAPI's words."""
        body = await request.read()
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.json_response({"detail": "Not Found"}, status=404)
        except web.HTTPMethodNotAllowed:
            return web.json_response({"detail": "Method Not Allowed"}, status=405)

    def error(self, message: str, status: int = 400) -> web.Response:
        """vLLM's create_error_response (BadRequestError by default)."""
        kind = {400: "BadRequestError", 404: "NotFoundError"}.get(status, "InternalServerError")
        error = {"message": message, "type": kind, "param": None, "code": status}
        body = {"object": "error", **error} if self.flat_errors else {"error": error}
        return web.json_response(body, status=status)

    async def models(self, request: web.Request) -> web.Response:
        card = {"id": self.model, "object": "model", "owned_by": "vllm", "root": self.model}
        return web.json_response({"object": "list", "data": [card]})

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.11.0"})

    async def metrics(self, request: web.Request) -> web.Response:
        gauge = "vllm:num_requests_running"
        text = (
            f"# HELP {gauge} Number of requests in model execution batches.\n"
            f"# TYPE {gauge} gauge\n"
            f'{gauge}{{engine="0",model_name="{self.model}"}} {float(self.running)}\n'
        )
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def speech(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            return self.error(f"JSON decode error: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("input"), str):
            return self.error("[{'type': 'missing', 'loc': ('body', 'input')}]")
        if body.get("model") not in (None, self.model):
            return self.error(f"The model `{body['model']}` does not exist.", 404)
        if (problem := self._invalid(body)) is not None:
            return self.error(problem)
        if body.get("response_format", "wav") != "wav":
            return self.error("this fake answers wav only")  # what the gateway asks of it
        self.running += 1
        try:
            await asyncio.sleep(self.synthesis_s)
            audio = tone_wav(0.06 * len(body["input"].split()) + 0.3)
        finally:
            self.running -= 1
        if self.cut_after is None:
            return web.Response(body=audio, content_type="audio/wav")
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        response.content_length = len(audio)
        await response.prepare(request)
        await response.write(audio[: self.cut_after])
        assert request.transport is not None
        request.transport.abort()
        return response

    @staticmethod
    def _invalid(body: dict) -> str | None:
        """serving_speech.py's _validate_tts_request."""
        task = body.get("task_type") or "CustomVoice"
        voice = body.get("voice")
        voice = voice.lower() if isinstance(voice, str) else voice
        if not body["input"].strip():
            return "Input text cannot be empty"
        language = body.get("language")
        if language is not None and language not in LANGUAGES:
            return f"Invalid language '{language}'. Supported: {', '.join(sorted(LANGUAGES))}"
        if task == "CustomVoice" and voice is not None and voice not in SPEAKERS:
            return f"Invalid speaker '{voice}'. Supported: {', '.join(sorted(SPEAKERS))}"
        if task == "Base":
            ref = body.get("ref_audio")
            if ref is None:
                return "Base task requires 'ref_audio' for voice cloning"
            if not str(ref).startswith(("http://", "https://", "data:")):
                return "ref_audio must be a URL (http/https) or base64 data URL (data:...)"
        else:
            if body.get("ref_text") is not None:
                return "'ref_text' is only valid for Base task"
            if body.get("x_vector_only_mode") is not None:
                return "'x_vector_only_mode' is only valid for Base task"
        if task == "VoiceDesign" and not body.get("instructions"):
            return "VoiceDesign task requires 'instructions' to describe the voice"
        if len(body.get("instructions") or "") > MAX_INSTRUCTIONS:
            return f"Instructions too long (max {MAX_INSTRUCTIONS} characters)"
        return None

"""The HTTP service: OpenAI's speech, voice and model routes, and health."""

import asyncio
import logging
import time
from importlib.metadata import version

from aiohttp import web

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.jobs import FENCE_HEADER, JobCancelled, Jobs, TrackedJob, fence_of
from aistack_contract.models import ModelCard, ModelList
from aistack_service import http
from aistack_service.http import REQUEST_ID, StreamBroken
from aistack_service.stuck import exit_when_stuck
from aistack_service.worker import Worker
from aistack_tts_piper import PROVIDER
from aistack_tts_piper.encoders import FORMATS
from aistack_tts_piper.request import read_speech_request
from aistack_tts_piper.settings import PiperSettings
from aistack_tts_piper.synthesis import speak
from aistack_tts_piper.telemetry import CHARACTERS, REQUESTS, SYNTHESIS
from aistack_tts_piper.voices import VoiceCatalog, bundled_voice, voices_in

log = logging.getLogger(__name__)

MODEL_ID = "piper"
VERSION = version("aistack-tts-piper")

settings_key = web.AppKey("settings", PiperSettings)
catalog_key = web.AppKey("catalog", VoiceCatalog)


def model_ids(settings: PiperSettings) -> list[str]:
    return [MODEL_ID, *(alias for alias in settings.piper_model_aliases if alias != MODEL_ID)]


async def models(request: web.Request) -> web.Response:
    cards = [
        ModelCard(
            id=model_id,
            owned_by="rhasspy",
            capabilities=["tts"],
            provider=PROVIDER,
            supports_instructions=False,  # a Piper voice speaks one way: accepted, unused
        )
        for model_id in model_ids(request.app[settings_key])
    ]
    listing = ModelList(data=cards).model_dump(mode="json", exclude_none=True)
    return web.json_response(listing)


async def voices(request: web.Request) -> web.Response:
    catalog = request.app[catalog_key]
    data = [
        {
            "id": voice.id,
            "name": voice.name,
            "language": voice.language,
            "sample_rate": voice.sample_rate,
            "aliases": catalog.aliases_of(voice),
            "default": voice is catalog.default,
        }
        for voice in catalog.voices.values()
    ]
    return web.json_response({"object": "list", "data": data, "voices": [v["id"] for v in data]})


async def speech(request: web.Request) -> web.StreamResponse:
    fence = fence_of(request.headers.get(FENCE_HEADER))
    with request.app[http.JOBS].track(request[REQUEST_ID], fence) as job:
        try:
            return await _speech(request, job)
        except JobCancelled:
            raise AistackError(ErrorKind.NETWORK, "the job was cancelled", PROVIDER) from None


async def _speech(request: web.Request, job: TrackedJob) -> web.StreamResponse:
    settings, catalog = request.app[settings_key], request.app[catalog_key]
    body = await read_speech_request(request, settings.tts_max_input_chars)
    if body.model not in model_ids(settings):
        served = ", ".join(model_ids(settings))
        raise AistackError(
            ErrorKind.MALFORMED, f"unknown model {body.model!r}; served: {served}", PROVIDER
        )
    started = time.monotonic()
    voice_file = catalog.resolve(body.voice)
    voice = await asyncio.to_thread(catalog.load, voice_file)
    job.check()
    fmt = FORMATS[body.format]
    worker = Worker(lambda _: speak(voice, body.input, fmt, body.speed or 1.0), job.id)
    worker.start()
    try:
        # The first sentence is made before the headers leave, so an early failure still
        # gets its envelope.
        first = await worker.next()
        job.check()
        response = web.StreamResponse(headers={"Content-Type": fmt.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(first)
            while (data := await worker.next()) is not None:
                await response.write(data)
            job.check()
        except (asyncio.CancelledError, ConnectionResetError):
            log.info("client went away; synthesis stopped")
            raise
        except JobCancelled as exc:  # a cut answer must not look whole: drop the connection
            log.info("job %s cancelled mid-stream; dropping the connection", job.id)
            raise StreamBroken("the job was cancelled") from exc
        except Exception as exc:
            log.exception("synthesis failed mid-stream; dropping the connection")
            raise StreamBroken(str(exc)) from exc
    finally:
        worker.stop()  # a no-op once the synthesis has ended
        await worker.finished()  # the job stays tracked until its compute has stopped
    await response.write_eof()
    SYNTHESIS.observe(time.monotonic() - started)
    CHARACTERS.labels(voice_file.id).inc(len(body.input))
    return response


async def _preload_default_voice(app: web.Application) -> None:
    catalog = app[catalog_key]
    await asyncio.to_thread(catalog.load, catalog.default)


def build_catalog(settings: PiperSettings) -> VoiceCatalog:
    found = [bundled_voice()]
    if settings.piper_voices_dir is not None:
        found += voices_in(settings.piper_voices_dir)
    return VoiceCatalog(found, settings.piper_default_voice, settings.piper_voice_map)


def create_app(settings: PiperSettings) -> web.Application:
    jobs = exit_when_stuck(Jobs(PROVIDER), settings)
    app = http.create_app(PROVIDER, REQUESTS, jobs, health={"version": VERSION})
    app[settings_key] = settings
    app[catalog_key] = build_catalog(settings)
    app.on_startup.append(_preload_default_voice)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/audio/voices", voices)
    app.router.add_post("/v1/audio/speech", speech)
    return app

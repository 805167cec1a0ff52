"""The internal ASR protocol: GET /health, GET /info, POST /transcribe, POST /evict."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from aistack_asr.audio import Audio
from aistack_asr.backend import Backend
from aistack_asr.metrics import INFERENCE, REQUESTS, TRANSCRIBED
from aistack_asr.service import TRACER, AsrService
from aistack_asr.settings import AsrSettings
from aistack_asr.upload import read_transcribe_body
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.events import BackendDone, BackendError, BackendInfo, encode_backend_event
from aistack_contract.jobs import FENCE_HEADER, JobCancelled, TrackedJob, fence_of
from aistack_contract.languages import hint_for
from aistack_contract.models import ModelList
from aistack_contract.transcription import TranscribeOptions
from aistack_service import http, weights_routes
from aistack_service.http import REQUEST_ID, error_body
from aistack_service.weights import whisper_sizes
from aistack_service.worker import Worker

log = logging.getLogger("aistack_asr")

SERVICE = web.AppKey("service", AsrService)
NDJSON = "application/x-ndjson"


async def info(request: web.Request) -> web.Response:
    cards = request.app[SERVICE].cards()
    return web.json_response(ModelList(data=cards).model_dump(mode="json", exclude_none=True))


async def evict(request: web.Request) -> web.Response:
    evicted = await asyncio.to_thread(request.app[SERVICE].cache.evict_idle)
    if evicted:
        log.info("evicted on request: %s", ", ".join(evicted))
    return web.json_response({"evicted": evicted})


async def transcribe(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    # Tracked from its arrival: a stop that comes while the upload is read or decoded
    # keeps the work from starting, and one that comes later waits for it to end.
    fence = fence_of(request.headers.get(FENCE_HEADER))
    with service.jobs.track(request[REQUEST_ID], fence) as tracked:
        try:
            return await _transcribe(request, service, tracked)
        except JobCancelled:
            provider = service.backend.provider
            raise AistackError(ErrorKind.NETWORK, "the job was cancelled", provider) from None


async def _transcribe(
    request: web.Request, service: AsrService, tracked: TrackedJob
) -> web.StreamResponse:
    provider = service.backend.provider
    max_bytes = int(service.settings.max_upload_mb * 2**20)
    options, file = await read_transcribe_body(request, provider, max_bytes)
    with contextlib.closing(file):  # a spooled file is removed once the job has ended
        card = service.card(options.model)
        options.language = hint_for(card, options.language)
        service.backend.validate(card, options)
        with TRACER.start_as_current_span("open", attributes={"bytes": file.size}):
            audio = await asyncio.to_thread(
                Audio.open, file.reader(), provider, service.settings.max_audio_sec
            )
        return await _run(request, service, tracked, options, audio)


async def _run(
    request: web.Request,
    service: AsrService,
    tracked: TrackedJob,
    options: TranscribeOptions,
    audio: Audio,
) -> web.StreamResponse:
    """Start the job on `audio` and stream its events (the job decodes as it goes)."""
    provider = service.backend.provider
    request_id = request[REQUEST_ID]
    tracked.check()
    started = time.monotonic()
    job = service.start(options, audio, request_id)
    try:
        first = await job.next()  # errors until here answer with the envelope and its status
        if not isinstance(first, BackendInfo):
            raise AistackError(ErrorKind.UNKNOWN, "the backend sent no info event", provider)
        response = web.StreamResponse(headers={"Content-Type": NDJSON})
        await response.prepare(request)
        try:
            segments, whole = await _stream(response, first, job, audio, request_id)
        except ConnectionError:
            log.info("%s: the caller hung up, transcription cancelled", request_id)
            return response
        if not whole:  # ended with an error line: nothing was transcribed to the end
            return response
        elapsed = time.monotonic() - started
        INFERENCE.labels(options.model).observe(elapsed)
        TRANSCRIBED.labels(options.model).inc(audio.seconds)
        log.info(
            "%s: %s, %.1f s of audio, %d segments in %.2f s",
            request_id, options.model, audio.seconds, segments, elapsed,
        )  # fmt: skip
        return response
    finally:
        job.stop()  # a no-op when the job has ended; else it cancels the work
        await job.finished()  # the job stays tracked until its compute has stopped


async def _stream(
    response: web.StreamResponse, first: BackendInfo, job: Worker, audio: Audio, request_id: str
) -> tuple[int, bool]:
    """Write the info event, each segment as it comes, then done (with the true duration
    where the audio was decoded to its end) or error; the segment count, and whether it
    ended with done."""
    await response.write(encode_backend_event(first))
    segments = 0
    try:
        while (event := await job.next()) is not None:
            await response.write(encode_backend_event(event))
            segments += 1
        if job.cancel.is_set():  # stopped by DELETE /jobs: what was sent is not the whole
            raise AistackError(ErrorKind.NETWORK, "the job was cancelled", audio.provider)
        last: BackendDone | BackendError = BackendDone(
            duration=audio.seconds if audio.complete else None
        )
    except ConnectionError:
        raise
    except Exception as exc:
        if not isinstance(exc, AistackError):
            log.exception("%s: transcription failed after %d segments", request_id, segments)
        last = BackendError(error=error_body(exc, audio.provider, request_id))
    await response.write(encode_backend_event(last))
    await response.write_eof()
    return segments, isinstance(last, BackendDone)


async def _evict_idle_models(app: web.Application) -> AsyncIterator[None]:
    """Background task: unload models idle for longer than the keep-alive."""
    service = app[SERVICE]
    keep_alive = service.settings.model_keep_alive_sec
    task = None
    if keep_alive >= 0:
        task = asyncio.create_task(_evict_loop(service, keep_alive))
    yield
    await asyncio.to_thread(service.stop_all)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _evict_loop(service: AsrService, keep_alive: float) -> None:
    interval = min(max(keep_alive / 2, 0.1), 10.0)
    while True:
        await asyncio.sleep(interval)
        evicted = await asyncio.to_thread(service.cache.evict_idle, keep_alive)
        if evicted:
            log.info("evicted after %g s idle: %s", keep_alive, ", ".join(evicted))


def create_app(
    backend: Backend, settings: AsrSettings, service: AsrService | None = None
) -> web.Application:
    """The protocol's app on `backend`; `service`: a subclass's, for a backend that adds
    routes of its own (the diarizer's POST /diarize)."""
    service = service or AsrService(backend, settings)
    app = http.create_app(
        backend.provider,
        REQUESTS,
        service.jobs,
        status=service.status,
        client_max_size=int(settings.max_upload_mb * 2**20),
    )
    app[SERVICE] = service
    app.cleanup_ctx.append(_evict_idle_models)
    app.router.add_get("/info", info)
    app.router.add_post("/transcribe", transcribe)
    app.router.add_post("/evict", evict)
    if backend.weights and settings.models_dir:
        weights_routes.add_routes(app, backend.weights, settings.models_dir, whisper_sizes())
    return app

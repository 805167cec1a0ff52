"""POST /v1/audio/transcriptions and /v1/audio/translations (OpenAI's Whisper API)."""

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator

from aiohttp import web
from pydantic import BaseModel

from aistack_contract.errors import AistackError
from aistack_contract.events import (
    BackendEvent,
    BackendInfo,
    DeltaSegment,
    StreamError,
    StreamWarning,
    TextDelta,
)
from aistack_contract.models import ModelCard
from aistack_contract.transcription import Logprob, Segment, TranscribeOptions
from aistack_edge.asr import diarize
from aistack_edge.asr.form import TranscriptionForm, Upload, read_upload
from aistack_edge.asr.render import render
from aistack_edge.asr.routing import choose_model, detector_for
from aistack_edge.asr.transcript import (
    delta_of,
    done_of,
    info_of,
    logprobs_of,
    result_of,
    segments_of,
    shape,
)
from aistack_edge.catalog import Entry
from aistack_edge.observability import exchange
from aistack_edge.relay import Outbox, deliver, outbox
from aistack_edge.routes import jobs
from aistack_edge.state import CATALOG, SESSION, SETTINGS
from aistack_edge.upstreams import asr
from aistack_edge.workload import Workload, continue_unless_busy, gpu_workload, refuse_if_busy

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.post("/v1/audio/transcriptions", expect_handler=continue_unless_busy)
async def transcriptions(request: web.Request) -> web.StreamResponse:
    return await _transcribe(request, translation=False)


@routes.post("/v1/audio/translations", expect_handler=continue_unless_busy)
async def translations(request: web.Request) -> web.StreamResponse:
    return await _transcribe(request, translation=True)


async def _transcribe(request: web.Request, translation: bool) -> web.StreamResponse:
    app = request.app
    refuse_if_busy(request)
    upload: Upload = await read_upload(request, app[SETTINGS].max_upload_bytes)
    form = upload.form
    if translation:
        form.translate = True
        form.model = "whisper-1" if form.model == "auto" else form.model
    if form.background:
        return await jobs.submit(request, upload)
    if diarize.wanted(form) and (diarized := await diarize.transcribe(request, upload)):
        return diarized
    entries = await app[CATALOG].of_capability("asr")
    entry = choose_model(form.model, form.language, entries, form.translate)
    options = form.options_for(entry.card)
    detector = detector_for(form.model, form.language, entries, form.translate)
    async with gpu_workload(request, "asr", detector or entry) as work:
        if detector is not None:
            form.language = await _detect(request, detector, upload, work.job_id)
            entry = choose_model(form.model, form.language, entries)
            work.switch_to(entry)
            options = form.options_for(entry.card)
        events = _events(request, entry, upload, options, work.job_id)
        async with contextlib.aclosing(events):
            # Errors found up front (undecodable audio, say) are still HTTP errors.
            info = await info_of(events, entry.provider)
            segments = work.watch(segments_of(events, info, entry.provider))
            if form.stream:
                return await _stream(request, form, entry.card, info, segments, work)
            collected = shape([s async for s in segments], form.segment_granularity)
            exchange.of(request).audio_s = info.duration
            result = result_of(info, collected, form.translate)
            logprobs = logprobs_of(result.words or []) if _logprobs(form, entry.card) else None
            answer = render(result, form.response_format, logprobs)
    return await deliver(request, answer)


def _logprobs(form: TranscriptionForm, card: ModelCard) -> bool:
    """Whether to answer with log-probabilities: asked for, and the model has them."""
    return form.logprobs and bool(card.supports_logprobs)


def _events(
    request: web.Request, entry: Entry, upload: Upload, options: TranscribeOptions, job_id: str
) -> AsyncGenerator[BackendEvent]:
    """The events of `entry`'s backend for the upload, asked with `options`, as the
    backend's job `job_id`."""
    app = request.app
    return asr.transcribe(
        app[SESSION],
        entry,
        upload.audio,
        upload.filename,
        options,
        job_id,
        app[SETTINGS].backend_timeout_s,
    )


async def _detect(request: web.Request, detector: Entry, upload: Upload, job_id: str) -> str:
    """The language `detector` hears in the upload's first 30 s (one step of the
    workload: the slot is held from here to the transcription's end)."""
    asked = TranscribeOptions(model=detector.card.id, detect_only=True)
    async with contextlib.aclosing(_events(request, detector, upload, asked, job_id)) as events:
        info = await info_of(events, detector.provider)
        async for _ in segments_of(events, info, detector.provider):
            pass  # none: the stream's end says the backend's job has ended
    log.info(
        "request %s: %s heard %s (%.2f)",
        request["request_id"], detector.card.id, info.language, info.language_probability or 0,
    )  # fmt: skip
    return info.language


async def _stream(
    request: web.Request,
    form: TranscriptionForm,
    card: ModelCard,
    info: BackendInfo,
    segments: AsyncIterator[Segment],
    work: Workload,
) -> web.StreamResponse:
    """SSE, begun once the backend has accepted the audio: one delta per segment, or for
    a model that does not stream the warning at once and later one delta (empty text
    for an empty transcript: the downgrade's readers count on exactly one)."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    async with outbox(request, response) as box:
        await _send_events(request, form, card, info, segments, work, box)
    return response


async def _send_events(
    request: web.Request,
    form: TranscriptionForm,
    card: ModelCard,
    info: BackendInfo,
    segments: AsyncIterator[Segment],
    work: Workload,
    box: Outbox,
) -> None:
    """The stream's events, put in `box` as the backend's segments come (at the
    backend's pace: `box` never waits on the client)."""

    async def send(event: BaseModel) -> None:
        await box.put(b"data: " + event.model_dump_json(exclude_none=True).encode() + b"\n\n")

    text = ""
    wanted = _logprobs(form, card)
    logprobs: list[Logprob] | None = [] if wanted else None
    try:
        with work.guard():
            if card.supports_streaming:
                async for segment in segments:
                    for piece in shape([segment], form.segment_granularity):
                        delta = delta_of(piece, text, wanted)
                        text += delta.delta
                        if logprobs is not None:
                            logprobs += delta.logprobs or []
                        await send(delta)
            else:
                await send(
                    StreamWarning(
                        code="streaming_unsupported",
                        model=card.id,
                        message=f"{card.id} does not stream; the whole transcript follows "
                        "as one delta",
                    )
                )
                collected = shape([s async for s in segments], form.segment_granularity)
                result = result_of(info, collected, False)
                text = result.text
                span = DeltaSegment(
                    start=result.segments[0].start if result.segments else 0.0,
                    end=result.segments[-1].end if result.segments else info.duration,
                    words=result.words,
                )
                if logprobs is not None:
                    logprobs = logprobs_of(result.words or [])
                await send(TextDelta(delta=text, segment=span, logprobs=logprobs))
        await send(done_of(info, text, logprobs))
        exchange.of(request).audio_s = info.duration
    except AistackError as error:
        await send(StreamError(error=error.body))

"""Background transcription jobs: submitted through POST /v1/audio/transcriptions with
`background=true` (`submit`), then read, followed and cancelled here (docs/jobs.md)."""

from typing import get_args

from aiohttp import web

from aistack_contract.errors import AistackError, ErrorKind
from aistack_edge.asr.form import ResponseFormat, Upload
from aistack_edge.asr.routing import choose_model
from aistack_edge.errors import malformed, quoted
from aistack_edge.jobs import JOBS
from aistack_edge.jobs.job import Job
from aistack_edge.jobs.runner import refuse_unsupported
from aistack_edge.middleware import error_response
from aistack_edge.state import CATALOG

routes = web.RouteTableDef()

_FORMATS = tuple(f for f in get_args(ResponseFormat) if f != "diarized_json")


async def submit(request: web.Request, upload: Upload) -> web.Response:
    """202 and the new job: its audio decoded and queued."""
    refuse_unsupported(upload)
    form = upload.form
    entries = await request.app[CATALOG].of_capability("asr")
    entry = choose_model(form.model, form.language, entries, form.translate)
    form.options_for(entry.card)  # what the model cannot do is refused now, not later
    job = await request.app[JOBS].submit(upload, entry)
    return web.json_response(job.public().model_dump(mode="json"), status=202)


class _NoSuchJob(Exception):
    pass


async def _job(request: web.Request) -> Job:
    job = await request.app[JOBS].get(request.match_info["job_id"])
    if job is None:
        raise _NoSuchJob
    return job


def _not_found(request: web.Request) -> web.Response:
    message = (
        f"no transcription job {quoted(request.match_info['job_id'])}: the id is wrong, or "
        "the job ended longer ago than it is kept (AISTACK_JOBS_KEEP_S)"
    )
    return error_response(AistackError(ErrorKind.MALFORMED, message), status=404)


@routes.get("/v1/audio/transcriptions/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    """The job; once completed with its result, in `?response_format=` if given."""
    shown = request.query.get("response_format")
    if shown is not None and shown not in _FORMATS:
        known = ", ".join(_FORMATS)
        raise malformed(f"response_format must be one of {known}, not {quoted(shown)}")
    try:
        job = await _job(request)
    except _NoSuchJob:
        return _not_found(request)
    return web.json_response(job.public(shown).model_dump(mode="json"))


@routes.post("/v1/audio/transcriptions/{job_id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel the job (a finished one stays as it ended); the job as it is now."""
    try:
        job = await _job(request)
    except _NoSuchJob:
        return _not_found(request)
    job = await request.app[JOBS].cancel(job)
    return web.json_response(job.public().model_dump(mode="json"))


@routes.get("/v1/audio/transcriptions/{job_id}/events")
async def job_events(request: web.Request) -> web.StreamResponse:
    """The job's SSE events (those of stream=true, each with its index as its `id`):
    those after `starting_after` so far, then live to the job's end."""
    after = request.query.get("starting_after", "-1")
    try:
        index = int(after) + 1
    except ValueError:
        raise malformed(f"starting_after must be an event's index, not {quoted(after)}") from None
    if index < 0:
        raise malformed("starting_after must be -1 or more")
    try:
        job = await _job(request)
    except _NoSuchJob:
        return _not_found(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    store = request.app[JOBS].store
    while True:
        while index < len(job.events):
            await response.write(f"id: {index}\ndata: {job.events[index]}\n\n".encode())
            index += 1
        if job.finished:
            break
        job = await store.next_state(job, index)
    await response.write_eof()
    return response

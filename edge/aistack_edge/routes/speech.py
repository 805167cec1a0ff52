"""/v1/audio/speech and every other TTS path under /v1/audio/: a transparent relay.

The request goes to the TTS backend that owns its model (a JSON body's `model`, or a
`?model=` query), else to the first configured TTS backend that is up. Its bytes go
out unchanged (but for a `ref_audio` file, inlined: see `tts.ref_audio`) and the
answer's bytes come back chunk by chunk as they arrive; only hop-by-hop headers are
dropped. A request that may synthesize (any method but GET, HEAD and OPTIONS) holds the
GPU slot until the backend's answer has been read whole, at the backend's pace (a slow
client reads it from the edge's outbox: `relay`); while this edge holds the slot, such
a request is refused before its body is read. `stream_format: "sse"` turns the audio
into OpenAI's speech stream events at the edge, for every model (`tts.sse`).
"""

import asyncio
import contextlib
import logging
import os

from aiohttp import web

from aistack_contract.errors import AistackError
from aistack_edge.bodies import is_json, read_json_body, read_spooled
from aistack_edge.catalog import Catalog, Entry
from aistack_edge.config import EdgeSettings
from aistack_edge.errors import malformed, quoted, unavailable
from aistack_edge.observability import exchange
from aistack_edge.observability.usage import audio_seconds
from aistack_edge.relay import outbox
from aistack_edge.state import CATALOG, SESSION, SETTINGS
from aistack_edge.tts import sse as speech_events
from aistack_edge.tts.body import prepare
from aistack_edge.tts.ref_audio import RefAudioPolicy
from aistack_edge.upstreams import tts
from aistack_edge.upstreams.http import end_to_end
from aistack_edge.workload import Workload, continue_unless_busy, gpu_workload, refuse_if_busy

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Every /v1/audio/ path but the ASR routes, which their own module serves.
_PATH = r"/v1/audio/{path:(?!(?:transcriptions|translations)$).+}"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@routes.route("*", _PATH, expect_handler=continue_unless_busy)
async def audio(request: web.Request) -> web.StreamResponse:
    app = request.app
    reads = request.method in _READS
    if not reads:
        refuse_if_busy(request)
    body, model, sse = await _read_body(request, app[SETTINGS])
    entry = await _backend(app[CATALOG], model)
    if reads:
        exchange.of(request).model = entry.card.id
        return await _relay(request, entry, body, sse, None)
    async with gpu_workload(request, "tts", entry) as work:
        return await _relay(request, entry, body, sse, work)


async def _read_body(
    request: web.Request, settings: EdgeSettings
) -> tuple[tts.Body, str | None, bool]:
    """The body to relay, the model it names (else the `?model=` query's), and whether
    it asks for `stream_format: "sse"`.

    Every body is read whole before the slot is taken, so that a slow client can't hold
    it while it uploads. A JSON body (and any body of /v1/audio/speech, which must be
    JSON) is read up to the JSON limit and parsed, to find its model and check its
    `ref_audio`; any other body, an upload say, is read up to the upload limit (into a
    temporary file above 1 MB) and passes on unchanged.
    """
    model = request.query.get("model")
    if not request.body_exists:
        return None, model, False
    if not is_json(request) and request.match_info["path"] != "speech":
        return await read_spooled(request, settings.max_upload_bytes, "the upload"), model, False
    raw = await read_json_body(request, settings.max_json_bytes)
    policy = RefAudioPolicy(
        settings.tts_ref_audio_dir, settings.tts_ref_audio_urls, settings.max_upload_bytes
    )
    body = await asyncio.to_thread(prepare, raw, policy)
    exchange.of(request).characters = body.characters
    return body.raw, body.model or model, body.sse


async def _backend(catalog: Catalog, model: str | None) -> Entry:
    """The entry of the backend that serves `model`, or the default one for no model."""
    entries = await catalog.of_capability("tts")
    if not entries:
        raise unavailable("no text-to-speech backend is up right now")
    if model is None:
        return entries[0]
    for entry in entries:
        if entry.card.id == model:
            return entry
    if silent := await catalog.unanswered("tts"):
        raise unavailable(
            f"no TTS backend that is up serves {quoted(model)}; not answering: {', '.join(silent)}"
        )
    served = ", ".join(entry.card.id for entry in entries)
    raise malformed(f"unknown TTS model {quoted(model)}; models served now: {served}")


async def _relay(
    request: web.Request, entry: Entry, body: tts.Body, sse: bool, work: Workload | None
) -> web.StreamResponse:
    """The backend's answer, relayed (as speech stream events when `sse`); `work` is the
    GPU workload of a synthesis (a read has none)."""
    app = request.app
    timeout_s = app[SETTINGS].backend_timeout_s
    # A read (no workload) starts no job: any id of the edge's own names it.
    job_id = work.job_id if work else os.urandom(12).hex()
    async with tts.relay(app[SESSION], request, entry, body, timeout_s, job_id) as upstream:
        headers = end_to_end(upstream.headers, drop=("Content-Length",))
        if sse:
            headers.update(
                {"Content-Type": speech_events.CONTENT_TYPE, "Cache-Control": "no-cache"}
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        await response.prepare(request)
        head, size = b"", 0
        chunks = tts.chunks(upstream, entry.provider)
        async with outbox(request, response) as box:
            try:
                with work.guard() if work else contextlib.nullcontext():
                    async for chunk in work.watch(chunks) if work else chunks:
                        if len(head) < 44:
                            head += chunk[: 44 - len(head)]
                        size += len(chunk)
                        await box.put(speech_events.delta(chunk) if sse else chunk)
            except AistackError as error:
                log.warning("request %s cut short: %s", request["request_id"], error.body.message)
                if sse:  # the stream says so, and never says done
                    await box.put(speech_events.error(error))
                    return response
                # The status has left: cut the connection, so the client can't take
                # the truncated audio for the whole.
                await box.cancel()
                if request.transport is not None:
                    request.transport.abort()
                return response
            if sse:
                await box.put(speech_events.done(exchange.of(request).characters))
        if request.method not in _READS:
            seconds = audio_seconds(upstream.content_type, head, size)
            exchange.of(request).audio_s = seconds
        return response

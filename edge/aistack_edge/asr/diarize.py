"""`gpt-4o-transcribe-diarize` and `response_format=diarized_json`: one transcription
(the ASR model `auto` would pick, with word times) composed with a diarizer's speaker
turns, both steps in ONE workload: the slot is held from the diarizer's start to the
transcription's end, and an early end stops whichever backend is computing.

The diarizer runs first (it does not stream): its turns are known before the first word
arrives, so a stream can send each segment as soon as another speaker's word ends it.
"""

import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from aistack_contract.diarization import MAX_REFERENCES, Diarization
from aistack_contract.errors import AistackError
from aistack_contract.events import BackendInfo, StreamError
from aistack_contract.transcription import Segment
from aistack_edge.asr import speakers
from aistack_edge.asr.form import TranscriptionForm, Upload
from aistack_edge.asr.render import join_texts
from aistack_edge.asr.routing import choose_model
from aistack_edge.asr.transcript import done_of, info_of, segments_of
from aistack_edge.catalog import Entry
from aistack_edge.errors import malformed, unavailable
from aistack_edge.observability import exchange
from aistack_edge.state import CATALOG, SESSION, SETTINGS
from aistack_edge.upstreams import asr
from aistack_edge.upstreams.diarize import diarize
from aistack_edge.workload import Workload, gpu_workload

log = logging.getLogger(__name__)

DIARIZE_MODEL = "gpt-4o-transcribe-diarize"
_FORMATS = ("json", "text", "diarized_json")


def wanted(form: TranscriptionForm) -> bool:
    """Whether the request is this module's: the diarizing model, or diarized_json."""
    return form.model == DIARIZE_MODEL or form.response_format == "diarized_json"


def routes(entries: list[Entry]) -> tuple[Entry, Entry] | None:
    """The ASR model `auto` picks (no language given) and the diarizer, if both are up."""
    transcribers = [e for e in entries if "asr" in e.card.capabilities]
    diarizers = [e for e in entries if "diarize" in e.card.capabilities]
    if not transcribers or not diarizers:
        return None
    return choose_model("auto", None, transcribers), diarizers[0]


def check(form: TranscriptionForm) -> None:
    """Refuse what OpenAI refuses with its diarizing model, saying why."""
    model = form.model if form.model == DIARIZE_MODEL else f"{DIARIZE_MODEL} (diarized_json)"
    if form.response_format not in _FORMATS:
        raise malformed(
            f"{model} answers in json, text or diarized_json, not {form.response_format}"
        )
    if form.prompt:
        raise malformed(f"prompt is not supported with {model}")
    if "timestamp_granularities" in form.model_fields_set:
        raise malformed(
            f"timestamp_granularities[] is not supported with {model}: "
            "diarized_json segments carry their own start and end"
        )
    if "logprobs" in form.include:
        raise malformed(f"include[]=logprobs is not supported with {model}")
    if form.translate:
        raise malformed(f"{model} transcribes; it does not translate")
    names, clips = form.known_speaker_names, form.known_speaker_references
    if len(names) != len(clips):
        raise malformed(
            f"known_speaker_names[] ({len(names)}) and known_speaker_references[] "
            f"({len(clips)}) must pair up, one name per reference clip"
        )
    if len(names) > MAX_REFERENCES:
        raise malformed(f"at most {MAX_REFERENCES} known speakers, not {len(names)}")
    if len(set(names)) != len(names) or not all(name.strip() for name in names):
        raise malformed("known_speaker_names[] must be distinct, non-empty names")


def clip_of(index: int, data_url: str) -> bytes:
    """The audio of `known_speaker_references[index]`, a base64 data URL."""
    head, comma, body = data_url.partition(",")
    if not (comma and head.startswith("data:") and head.endswith(";base64")):
        raise malformed(
            f"known_speaker_references[{index}] must be a data URL (data:audio/wav;base64,...)"
        )
    try:
        clip = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise malformed(f"known_speaker_references[{index}] is not valid base64") from None
    if not clip:
        raise malformed(f"known_speaker_references[{index}] is empty")
    return clip


async def transcribe(request: web.Request, upload: Upload) -> web.StreamResponse | None:
    """Serve a diarizing request; None where the format asks for plain text, which the
    ordinary path serves (the model becomes `auto`, as the alias routes)."""
    form = upload.form
    check(form)
    clips = [clip_of(i, url) for i, url in enumerate(form.known_speaker_references)]
    if form.model == DIARIZE_MODEL:
        form.model = "auto"
    if form.response_format != "diarized_json":
        return None
    app = request.app
    catalog = app[CATALOG]
    diarizers = await catalog.of_capability("diarize")
    if not diarizers:
        raise unavailable("no diarization backend is up right now (AISTACK_DIARIZE_BACKENDS)")
    entry = choose_model(form.model, form.language, await catalog.of_capability("asr"))
    options = form.options_for(entry.card)
    options.word_timestamps = True
    settings, session, request_id = app[SETTINGS], app[SESSION], request["request_id"]
    async with gpu_workload(request, "asr", diarizers[0]) as work:
        found = await diarize(
            session, diarizers[0], upload.audio, clips, request_id, settings.backend_timeout_s
        )
        labels = speakers.names(found, form.known_speaker_names, settings.diarize_match_threshold)
        work.switch_to(entry)
        events = asr.transcribe(
            session, entry, upload.audio, upload.filename, options, request_id,
            settings.backend_timeout_s,
        )  # fmt: skip
        async with contextlib.aclosing(events):
            info = await info_of(events, entry.provider)
            segments = work.watch(segments_of(events, info, entry.provider))
            exchange.of(request).audio_s = info.duration
            if form.stream:
                return await _stream(request, found, labels, info, segments, work)
            return await _whole(found, labels, info, segments)


async def _whole(
    found: Diarization, labels: dict[str, str], info: BackendInfo, segments: AsyncIterator[Segment]
) -> web.Response:
    composer = speakers.Composer(found, labels)
    parts = [
        part async for segment in segments for part in composer.add(speakers.words_of(segment))
    ]
    parts += composer.finish()
    return web.json_response(
        {
            "task": "transcribe",
            "duration": info.duration,
            "text": join_texts([part["text"] for part in parts]),
            "segments": parts,
            "usage": {"type": "duration", "seconds": info.duration},
        }
    )


async def _stream(
    request: web.Request,
    found: Diarization,
    labels: dict[str, str],
    info: BackendInfo,
    segments: AsyncIterator[Segment],
    work: Workload,
) -> web.StreamResponse:
    """SSE: a transcript.text.segment event as each speaker's run ends, then
    transcript.text.done with the whole text."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)

    async def send(event: dict) -> None:
        await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")

    composer = speakers.Composer(found, labels)
    texts: list[str] = []
    try:
        with work.guard():
            async for segment in segments:
                for part in composer.add(speakers.words_of(segment)):
                    texts.append(part["text"])
                    await send(part)
        for part in composer.finish():
            texts.append(part["text"])
            await send(part)
        text = join_texts(texts)
        await send(done_of(info, text).model_dump(mode="json", exclude_none=True))
    except AistackError as error:
        await send(StreamError(error=error.body).model_dump(mode="json"))
    await response.write_eof()
    return response

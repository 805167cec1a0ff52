"""/v1/audio/speech and every other TTS path under /v1/audio/: a transparent relay.

The request goes to the TTS backend that owns its model (a JSON body's `model`, or a
`?model=` query), else to the first configured TTS backend that is up. Its bytes go
out unchanged and the answer's bytes come back chunk by chunk as they arrive; only
hop-by-hop headers are dropped. A request that may synthesize (any method but GET,
HEAD and OPTIONS) holds the GPU slot until its answer has been relayed whole.
"""

import base64
import binascii
import json
import logging
import os
import re
from pathlib import Path

from aiohttp import web
from yarl import URL

from aistack_contract.errors import AistackError
from aistack_edge.catalog import Catalog, Entry
from aistack_edge.config import EdgeSettings
from aistack_edge.errors import malformed, unavailable
from aistack_edge.middleware import REQUEST_ID
from aistack_edge.state import CATALOG, SESSION, SETTINGS, SLOT
from aistack_edge.upstreams import tts
from aistack_edge.upstreams.http import end_to_end

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Every /v1/audio/ path but the ASR routes, which their own module serves.
_PATH = r"/v1/audio/{path:(?!(?:transcriptions|translations)$).+}"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_REF_AUDIO = "ref_audio"


@routes.route("*", _PATH)
async def audio(request: web.Request) -> web.StreamResponse:
    app = request.app
    body, model = await _read_body(request, app[SETTINGS])
    entry = await _backend(app[CATALOG], model)
    if request.method in _READS:
        return await _relay(request, entry, body)
    async with app[SLOT].hold(f"tts {entry.card.id} (request {request['request_id']})"):
        return await _relay(request, entry, body)


async def _read_body(request: web.Request, settings: EdgeSettings) -> tuple[tts.Body, str | None]:
    """The body to relay, and the model it names.

    A JSON body (and any body of /v1/audio/speech) is read whole, to find its model
    and check its `ref_audio`; any other body, an upload say, streams through unread.
    """
    model = request.query.get("model")
    if not request.body_exists:
        return None, model
    is_json = request.content_type == "application/json" or request.content_type.endswith("+json")
    if not is_json and request.match_info["path"] != "speech":
        return request.content, model
    raw = await request.read()
    fields, ref_audios = _parse(raw)
    for value in ref_audios:
        check_ref_audio(value, settings.tts_ref_audio_dir, settings.tts_ref_audio_urls)
    named = fields.get("model", model)
    if named is not None and not isinstance(named, str):
        raise malformed("model must be a string")
    return raw, named


def _parse(raw: bytes) -> tuple[dict, list[object]]:
    """The JSON object, and every `ref_audio` in it at any depth.

    A repeated key is refused: the backend's parser might keep the other copy."""
    ref_audios: list[object] = []

    def pairs(items: list[tuple[str, object]]) -> dict:
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys):
            raise malformed("the JSON body repeats a key")
        ref_audios.extend(value for key, value in items if key == _REF_AUDIO)
        return dict(items)

    try:
        fields = json.loads(raw, object_pairs_hook=pairs)
    except ValueError as exc:
        raise malformed(f"the body is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise malformed("the body must be a JSON object")
    return fields, ref_audios


def check_ref_audio(value: object, directory: Path | None, urls: bool) -> None:
    """Refuse a `ref_audio` that would make a backend read what it should not.

    Allowed: a `data:` URL holding base64; the absolute path of a file inside
    `directory`; an http(s) URL when `urls` is on."""
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise malformed("ref_audio must be a data: URL or the path of a file on the server")
    scheme = match[1].lower() if (match := _SCHEME.match(value)) else None
    if scheme == "data":
        _check_data_url(value)
    elif scheme in ("http", "https"):
        if not urls:
            raise malformed(
                "ref_audio URLs are not fetched here (AISTACK_TTS_REF_AUDIO_URLS is off); "
                "send the audio inline as a data: URL"
            )
    elif scheme is not None:
        raise malformed(f"ref_audio: {scheme}: URLs are not accepted; send a data: URL")
    else:
        _check_server_path(value, directory)


def _check_data_url(value: str) -> None:
    header, comma, payload = value.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise malformed("ref_audio: a data: URL must be base64 (data:audio/wav;base64,...)")
    try:
        audio = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise malformed(f"ref_audio: the data: URL is not valid base64: {exc}") from None
    if not audio:
        raise malformed("ref_audio: the data: URL holds no audio")


def _check_server_path(value: str, directory: Path | None) -> None:
    """Inside `directory` both as written and with symlinks and `..` resolved."""
    if directory is None:
        raise malformed(
            "ref_audio names a file on the server, and no directory is open to that "
            "(AISTACK_TTS_REF_AUDIO_DIR is unset); send the audio as a data: URL"
        )
    path = Path(value)
    if not path.is_absolute():
        raise malformed("ref_audio: a file on the server is named by its absolute path")
    root = directory.absolute()
    written = Path(os.path.normpath(path))
    if not (written.is_relative_to(root) and path.resolve().is_relative_to(root.resolve())):
        raise malformed("ref_audio is outside the directory open to reference audio")
    if not path.is_file():
        raise malformed("ref_audio: no such file in the reference audio directory")


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
            f"no TTS backend that is up serves {model!r}; not answering: {', '.join(silent)}"
        )
    served = ", ".join(entry.card.id for entry in entries)
    raise malformed(f"unknown TTS model {model!r}; models served now: {served}")


async def _relay(request: web.Request, entry: Entry, body: tts.Body) -> web.StreamResponse:
    app = request.app
    provider = tts.provider_of(entry.card)
    url = URL(entry.upstream + request.raw_path, encoded=True)
    headers = end_to_end(request.headers, drop=("Host", "Expect"))
    headers[REQUEST_ID] = request["request_id"]
    async with tts.exchange(
        app[SESSION],
        request.method,
        url,
        provider,
        body,
        headers,
        app[SETTINGS].backend_timeout_s,
    ) as upstream:
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=end_to_end(upstream.headers, drop=("Content-Length",)),
        )
        await response.prepare(request)
        try:
            async for chunk in tts.chunks(upstream, provider):
                await response.write(chunk)
        except AistackError as error:
            # The status has left: cut the connection, so the client can't take the
            # truncated audio for the whole.
            log.warning("request %s cut short: %s", request["request_id"], error.body.message)
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

"""The multipart form of /v1/audio/transcriptions and /v1/audio/translations."""

import email.message
import email.utils
import json
from dataclasses import dataclass
from typing import Literal

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, Field, ValidationError

from aistack_contract.errors import AistackError
from aistack_contract.languages import hint_for
from aistack_contract.models import ModelCard
from aistack_contract.transcription import TranscribeOptions, VadParameters
from aistack_edge.bodies import check_encoding, close_with, stop_reading
from aistack_edge.errors import invalid, malformed, overflow, quoted
from aistack_service.spool import Spool

ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt", "diarized_json"]
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}
# Fields that repeat: the SDK names them with brackets (`include[]`), curl users often without.
_LIST_FIELDS = {
    name + suffix
    for name in (
        "timestamp_granularities",
        "include",
        "known_speaker_names",
        "known_speaker_references",
        "keywords",
        "languages",
    )
    for suffix in ("", "[]")
}
# The SDK sends an object field as one part per key: `chunking_strategy[type]=server_vad`.
_OBJECT_FIELDS = ("chunking_strategy",)
_CHUNK = 1 << 16
# A form of this route has a dozen fields at most (a list field repeats a few times).
MAX_PARTS = 64
MAX_FIELD_BYTES = 64 * 1024
"""The largest field besides the file (a prompt is a few hundred words): a field is held
in memory, and a 90 MB `model` must not be."""
MAX_REFERENCE_BYTES = 4 * 1024 * 1024
"""The largest `known_speaker_references[]` field: a data URL of a clip of up to 10 s (a
10 s WAV of 48 kHz stereo is about 2.6 MB in base64)."""
_REFERENCE_FIELDS = {"known_speaker_references", "known_speaker_references[]"}
# What aiohttp can undo; a form-data part needs none (RFC 7578 §4.7).
_TRANSFER_ENCODINGS = frozenset({"binary", "7bit", "8bit", "base64", "quoted-printable"})
# What aiohttp raises for a body that is not well-formed multipart (bad part headers
# raise its HTTP parser's errors).
_UNREADABLE = (ValueError, AssertionError, HttpProcessingError, RequestPayloadError)


class ServerVad(VadParameters):
    """`chunking_strategy` as an object: OpenAI's server VAD settings."""

    type: Literal["server_vad"]


class TranscriptionForm(BaseModel):
    model: str = "auto"
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    response_format: ResponseFormat = "json"
    timestamp_granularities: list[Literal["word", "segment"]] = ["segment"]
    stream: bool = False
    background: bool = False
    """Answer at once with a job that transcribes in the background (docs/jobs.md)."""
    translate: bool = False
    segment_granularity: Literal["sentence", "subtitle"] = "sentence"
    include: list[Literal["logprobs"]] = []
    chunking_strategy: Literal["auto"] | ServerVad | None = None
    known_speaker_names: list[str] = []
    known_speaker_references: list[str] = []
    """Accepted as OpenAI's diarizing model takes them (up to 4 names, one reference each)."""

    @property
    def logprobs(self) -> bool:
        """Whether the result carries log-probabilities: OpenAI gives them with `json` only."""
        return "logprobs" in self.include and self.response_format == "json"

    def options_for(self, card: ModelCard) -> TranscribeOptions:
        """What to ask of the backend serving `card`."""
        options = TranscribeOptions(
            model=card.id,
            language=hint_for(card, self.language),
            prompt=self.prompt,
            temperature=self.temperature,
            translate=self.translate,
        )
        if isinstance(self.chunking_strategy, ServerVad):
            options.vad = VadParameters(**self.chunking_strategy.model_dump(exclude={"type"}))
        if self.translate and not card.supports_translate:
            if card.languages != ["en"]:
                raise malformed(f"{card.id} cannot translate; translation needs a Whisper model")
            # An English-only Whisper model already answers in English, the target language.
            options.translate, options.language = False, "en"
        return options


@dataclass
class Upload:
    form: TranscriptionForm
    audio: Spool
    """The file; closed when the request's handling ends."""
    filename: str


def _disposition(part: BodyPartReader) -> tuple[str, str | None]:
    """A part's field name and filename. aiohttp gives up on some valid headers (a quoted
    filename with both '%' and ';', say); the standard library's parser reads those."""
    if part.name is not None:
        return part.name, part.filename
    header = email.message.Message()
    header["Content-Disposition"] = part.headers.get(hdrs.CONTENT_DISPOSITION, "")
    name = header.get_param("name", "", header="Content-Disposition")
    return email.utils.collapse_rfc2231_value(name), header.get_filename()


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise malformed(f"{name} must be true or false, not {quoted(value)}")


async def read_upload(request: web.Request, max_bytes: int) -> Upload:
    """Read the whole form, refusing a body over `max_bytes` while it streams in. Every
    byte counts (boundaries, part headers and names too), and so does every part."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    if not request.content_type.startswith("multipart/form-data"):
        raise malformed("send the audio as multipart/form-data with a 'file' field")
    check_encoding(request)
    audio = Spool()
    try:
        fields, filename = await _read_parts(request, max_bytes, audio)
    except BaseException:
        audio.close()
        raise
    if not audio.size:
        audio.close()
        raise malformed("the 'file' field is missing or empty")
    try:
        upload = Upload(_validate(fields), audio, filename)
    except BaseException:
        audio.close()
        raise
    close_with(request, audio)
    return upload


async def _read_parts(
    request: web.Request, max_bytes: int, audio: Spool
) -> tuple[dict[str, object], str]:
    """The form's fields, and the file's name; the file itself goes to `audio`."""
    body = request.content

    def count() -> None:
        """Everything received so far, decoded: the parser reads from the same stream."""
        if body.total_bytes > max_bytes:
            stop_reading(request)
            raise _too_large(max_bytes)

    fields: dict[str, object] = {}
    filename, parts = "audio", 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            count()
            parts += 1
            if parts > MAX_PARTS:
                raise malformed(f"the form has more than {MAX_PARTS} parts")
            name, given = _disposition(part)
            encoding = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING, "binary").lower()
            if encoding not in _TRANSFER_ENCODINGS:
                raise malformed(
                    f"part {quoted(name)}: unknown Content-Transfer-Encoding {quoted(encoding)}"
                )
            if name == "file":
                filename = given or filename
                while chunk := await part.read_chunk(_CHUNK):
                    count()
                    await audio.write(chunk)
                continue
            raw = bytearray()
            limit = MAX_REFERENCE_BYTES if name in _REFERENCE_FIELDS else MAX_FIELD_BYTES
            while chunk := await part.read_chunk(_CHUNK):
                count()
                raw += chunk
                if len(raw) > limit:
                    stop_reading(request)
                    raise overflow(
                        f"the form field {quoted(name)} is larger than the "
                        f"{limit // 1024} KiB limit of such a field"
                    )
            value = bytes(part.decode(raw)).decode(errors="replace")
            if name in _LIST_FIELDS:
                fields.setdefault(name.removesuffix("[]"), []).append(value)  # type: ignore[union-attr]
            elif (key := _object_key(name)) is not None:
                field, sub = key
                keys = fields.setdefault(field, {})
                if not isinstance(keys, dict):
                    raise malformed(f"{field} is sent both whole and by its keys")
                keys[sub] = value
            else:
                fields[name] = value
        count()
    except _UNREADABLE as exc:
        raise malformed(f"unreadable multipart body: {exc}") from exc
    return fields, filename


def _object_key(name: str) -> tuple[str, str] | None:
    """(`chunking_strategy`, `type`) for the part `chunking_strategy[type]`."""
    for field in _OBJECT_FIELDS:
        if name.startswith(field + "[") and name.endswith("]"):
            return field, name[len(field) + 1 : -1]
    return None


def _object(name: str, value: object) -> object:
    """An object field sent as JSON text (`chunking_strategy={"type": "server_vad"}`, as
    curl users send it), else as it came: "auto", or the SDK's bracketed keys."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise malformed(f"{name} is not valid JSON: {exc}") from exc
    return value


def _too_large(max_bytes: int) -> AistackError:
    return overflow(f"the upload is larger than the {max_bytes // 2**20} MB limit")


def _validate(fields: dict[str, object]) -> TranscriptionForm:
    flags = ("stream", "translate", "background")
    for name in flags:
        if name in fields:
            fields[name] = _flag(name, str(fields[name]))
    fields = {k: v for k, v in fields.items() if v != "" or k in flags}
    for name in _OBJECT_FIELDS:
        if name in fields:
            fields[name] = _object(name, fields[name])
    try:
        return TranscriptionForm.model_validate(fields)
    except ValidationError as exc:
        raise malformed(invalid(exc, "form")) from exc

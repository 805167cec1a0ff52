"""The Realtime API's events of a transcription session, as the official SDK defines
them (`openai.types.realtime`): the client's, parsed and checked here, and the server's,
built here.

Both session shapes are read: the GA one (`session.update` with a session of
`type: "transcription"`, its settings under `audio.input`) and the beta one
(`transcription_session.update`, flat `input_audio_*` fields), which older clients send;
each is answered in its own shape.
"""

import os
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aistack_contract.errors import AistackError, ErrorKind
from aistack_edge.errors import invalid, malformed, quoted
from aistack_edge.realtime.audio import RATES


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(10).hex()}"


class _Lenient(BaseModel):
    """Fields this server does not use (OpenAI adds new ones) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")


class ServerVadConfig(_Lenient):
    type: Literal["server_vad"] = "server_vad"
    threshold: float = Field(0.5, ge=0, le=1)
    prefix_padding_ms: int = Field(300, ge=0, le=10_000)
    silence_duration_ms: int = Field(500, ge=0, le=10_000)
    idle_timeout_ms: int | None = Field(None, gt=0)
    """Past this much appended audio with no speech (since the last turn or commit), an
    `input_audio_buffer.timeout_triggered` event."""
    create_response: bool | None = None
    interrupt_response: bool | None = None
    """Both belong to conversation sessions (responses): kept and shown, nothing else."""

    @property
    def silence_ms(self) -> int:
        return self.silence_duration_ms


# Semantic VAD has no turn model here: the server VAD listens, and eagerness sets how
# long a silence ends the turn (OpenAI's `auto` is `medium`).
SEMANTIC_SILENCE_MS = {"high": 300, "medium": 700, "auto": 700, "low": 1500}


class SemanticVadConfig(_Lenient):
    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool | None = None
    interrupt_response: bool | None = None

    # What OpenAI's server VAD takes that semantic VAD does not expose.
    threshold: ClassVar[float] = 0.5
    prefix_padding_ms: ClassVar[int] = 300
    idle_timeout_ms: ClassVar[None] = None

    @property
    def silence_ms(self) -> int:
        return SEMANTIC_SILENCE_MS[self.eagerness]


TurnDetection = Annotated[ServerVadConfig | SemanticVadConfig, Field(discriminator="type")]


class TranscriptionConfig(_Lenient):
    model: str = "auto"
    language: str | None = None
    prompt: str | None = None
    languages: list[str] | None = None
    """The languages the audio may be in: one is a language hint, as `language`."""
    keywords: list[str] | None = None
    """Words the audio may hold: the backend gets them as prompt words."""
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None
    """Kept and shown: an utterance is transcribed once it is committed, whatever it says."""

    @property
    def language_hint(self) -> str | None:
        """The language the backend is told: `language`, or the one of `languages`."""
        if self.language:
            return self.language
        return self.languages[0] if self.languages and len(self.languages) == 1 else None

    @property
    def prompt_words(self) -> str | None:
        """The prompt the backend is given: `prompt`, then the keywords (Whisper reads a
        prompt of keywords as the words to expect, as OpenAI's whisper-1 guide has it)."""
        parts = [self.prompt] if self.prompt else []
        if self.keywords:
            parts.append(", ".join(self.keywords))
        return " ".join(parts) or None


class AudioFormat(_Lenient):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: int | None = None


class NoiseReduction(_Lenient):
    type: Literal["near_field", "far_field"] | None = None
    strength: float | None = Field(None, ge=0)


class InputConfig(_Lenient):
    format: AudioFormat = AudioFormat(rate=24_000)
    transcription: TranscriptionConfig = TranscriptionConfig()
    turn_detection: TurnDetection | None = ServerVadConfig()
    noise_reduction: NoiseReduction | None = None


LOGPROBS = "item.input_audio_transcription.logprobs"


class SessionConfig(_Lenient):
    """A transcription session's settings (GA shape): what `session.updated` shows."""

    input: InputConfig = InputConfig()
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None

    @property
    def rate(self) -> int:
        return RATES[self.input.format.type]

    def updated(self, session: dict[str, Any]) -> "SessionConfig":
        """These settings with a GA `session.update`'s session applied: only the fields it
        holds change (`null` turns turn detection off)."""
        kind = session.get("type", "transcription")
        if kind != "transcription":
            raise malformed(
                f"session.type {quoted(kind)}: this server runs transcription sessions only "
                '(type "transcription"; connect with ?intent=transcription)'
            )
        merged = _merged(self.model_dump(), _ga_fields(session))
        return _checked(merged)

    def updated_beta(self, session: dict[str, Any]) -> "SessionConfig":
        """These settings with a beta `transcription_session.update`'s session applied."""
        given: dict[str, Any] = {}
        if "input_audio_format" in session:
            named = session["input_audio_format"]
            given["format"] = {
                "type": _BETA_FORMATS.get(named, named) if isinstance(named, str) else named
            }
        if "input_audio_transcription" in session:
            given["transcription"] = session["input_audio_transcription"] or {}
        for beta, ga in (("turn_detection", "turn_detection"),
                         ("input_audio_noise_reduction", "noise_reduction")):  # fmt: skip
            if beta in session:
                given[ga] = session[beta]
        fields: dict[str, Any] = {"input": given}
        if "include" in session:
            fields["include"] = session["include"]
        return _checked(_merged(self.model_dump(), fields))

    def ga(self, session_id: str) -> dict[str, Any]:
        """The session object of `session.created` / `session.updated`."""
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "type": "transcription",
            "audio": {"input": self.input.model_dump() | {"format": self._format()}},
            "include": self.include,
        }

    def _format(self) -> dict[str, Any]:
        return self.input.format.model_dump(exclude_none=True)

    def beta(self, session_id: str) -> dict[str, Any]:
        """The session object of `transcription_session.updated`."""
        beta_format = {v: k for k, v in _BETA_FORMATS.items()}[self.input.format.type]
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "input_audio_format": beta_format,
            "input_audio_transcription": self.input.transcription.model_dump(),
            "turn_detection": _dump(self.input.turn_detection),
            "input_audio_noise_reduction": _dump(self.input.noise_reduction),
            "include": self.include,
        }


_BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump()


def _ga_fields(session: dict[str, Any]) -> dict[str, Any]:
    audio = session.get("audio") or {}
    if not isinstance(audio, dict) or not isinstance(audio.get("input") or {}, dict):
        raise malformed("session.audio.input must be an object")
    fields: dict[str, Any] = {"input": audio.get("input") or {}}
    if "include" in session:
        fields["include"] = session["include"]
    return fields


def _merged(current: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`current` with `given` laid over it, object by object; any other value (null
    included) replaces, and so does a format (its rate belongs to its type)."""
    merged = dict(current)
    for name, value in given.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict) and name != "format":
            merged[name] = _merged(merged[name], value)
        else:
            merged[name] = value
    return merged


def _checked(fields: dict[str, Any]) -> SessionConfig:
    vad = fields.get("input", {}).get("turn_detection")
    if isinstance(vad, dict) and vad.get("type") is None:
        vad["type"] = "server_vad"  # OpenAI's default, and the beta shape's
    try:
        config = SessionConfig.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).replace("input", "audio.input", 1)
        raise malformed(f"session.{where}: {first['msg']}") from exc
    audio_format = config.input.format
    rate = RATES[audio_format.type]
    if audio_format.rate is not None and audio_format.rate != rate:
        raise malformed(
            f"{audio_format.type} is taken at {rate} Hz only, not {audio_format.rate} Hz "
            "(16-bit mono little-endian PCM at 24 kHz; G.711 at 8 kHz)"
        )
    if audio_format.type == "audio/pcm":
        audio_format.rate = rate
    return config


# --- client events -------------------------------------------------------------------


class ClientEvent(_Lenient):
    type: str
    event_id: str | None = None


class Append(ClientEvent):
    audio: str


class SessionUpdate(ClientEvent):
    session: dict[str, Any]


# What OpenAI's conversation sessions take, and a transcription session does not.
CONVERSATION_EVENTS = frozenset(
    {
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)


def parse(kind: type[ClientEvent], data: dict[str, Any]) -> Any:
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise malformed(f"{data.get('type')}: {invalid(exc, 'event')}") from exc


# --- server events -------------------------------------------------------------------

# The Realtime API's error types for the envelope's kinds: the client's fault or not.
_OPENAI_TYPES = {
    ErrorKind.MALFORMED: "invalid_request_error",
    ErrorKind.OVERFLOW: "invalid_request_error",
}


def error_body(error: AistackError, event_id: str | None = None) -> dict[str, Any]:
    """An error as the Realtime API's error object, carrying the envelope's kind,
    provider and message."""
    body = error.body
    return {
        "type": _OPENAI_TYPES.get(body.kind, "server_error"),
        "code": body.kind.value,
        "message": body.message,
        "param": None,
        "event_id": event_id,
        "kind": body.kind.value,
        "provider": body.provider,
    }


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A server event of type `kind`, with a new event id."""
    return {"type": kind, "event_id": new_id("event"), **fields}


def error_event(error: AistackError, event_id: str | None = None) -> dict[str, Any]:
    return event("error", error=error_body(error, event_id))

"""The edge's OpenAPI 3.1 document, served at GET /openapi.json.

The shapes come from the contract's pydantic models and the transcription form; the
paths are the edge's routes (a test holds the two together). Bodies the edge relays
without owning them (chat, speech) are described as far as the edge checks them.
"""

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from aistack_contract.errors import ErrorEnvelope
from aistack_contract.models import ModelCard, ModelList
from aistack_contract.transcription import DiarizedResult, TextResult, TranscriptionResult
from aistack_edge import __version__
from aistack_edge.asr.diarize import DIARIZE_MODEL
from aistack_edge.asr.form import TranscriptionForm
from aistack_edge.jobs.job import TranscriptionJob

_REF = "#/components/schemas/{model}"
JSON = "application/json"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": _REF.format(model=name)}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


_ERRORS = {"default": _json(_ref("ErrorEnvelope"), "an error: the envelope")}
# The contract's five kinds map every error; an unknown route or method is a request the
# caller got wrong, so `malformed`, with HTTP's own 404 and 405.
_DESCRIPTION = (
    'Every error is the envelope `{"error": {"kind", "provider", "message"}}` '
    "with the status of its kind: malformed 400, overflow 413, network 503 (with "
    "Retry-After when the GPU slot is busy), cancelled 499, unknown 500. An unknown "
    "route is 404 and a method the route does not take 405, both of kind `malformed`; "
    "the message names the method and path, and for 405 the methods allowed."
)
_ANY_OBJECT: Schema = {"type": "object", "additionalProperties": True}
_TEXT = {"type": "string"}


_SECRET_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "expires_after": {
            "type": "object",
            "properties": {
                "anchor": {"const": "created_at"},
                "seconds": {"type": "integer", "minimum": 10, "maximum": 7200},
            },
            "additionalProperties": False,
        },
        "session": {
            "type": "object",
            "properties": {"type": {"const": "transcription"}},
            "required": ["type"],
        },
    },
    "additionalProperties": False,
}
_CLIENT_SECRET: Schema = {
    "type": "object",
    "properties": {
        "value": _TEXT,
        "expires_at": {"type": "integer"},
        "session": {"type": "object"},
    },
    "required": ["value", "expires_at", "session"],
}


def _operation(summary: str, responses: dict[str, Schema], **more: Any) -> Schema:
    return {"summary": summary, "responses": {**responses, **_ERRORS}, **more}


# Routing aliases every edge knows (GET /v1/models lists them, with the models served now).
_MODEL_IDS = ["auto", "whisper-1", DIARIZE_MODEL]
_FIELD_NOTES = {
    "model": f"a model of GET /v1/models; `{DIARIZE_MODEL}` routes as `auto` and answers "
    "`diarized_json` with speakers",
    "response_format": "`diarized_json`: segments by speaker (the DiarizedResult schema), "
    "with `stream`: `transcript.text.segment` events (DiarizedSegment)",
    "known_speaker_names": "up to 4 names, one per `known_speaker_references[]` clip; a "
    "speaker that matches a clip is labelled by its name",
    "background": "answer at once `202` with a job (the TranscriptionJob schema) that "
    "transcribes in the background: read, follow and cancel it at "
    "`/v1/audio/transcriptions/{job_id}` (docs/jobs.md); not with `stream` nor `diarized_json`",
    "known_speaker_references": "data URLs (`data:audio/wav;base64,...`) of 2-10 s clips "
    "of each known speaker, in the order of the names",
}


def _transcription_form() -> Schema:
    form = TranscriptionForm.model_json_schema(ref_template=_REF)
    form.pop("$defs", None)  # in the components (document())
    fields = form["properties"]
    fields["model"]["examples"] = _MODEL_IDS
    for name, note in _FIELD_NOTES.items():
        fields[name]["description"] = note
    # The SDK names a list field with brackets (`include[]`); the edge takes both spellings.
    bracketed = {
        f"{name}[]": {**field, "description": f"`{name}` as the SDK sends it"}
        for name, field in fields.items()
        if field.get("type") == "array"
    }
    form["properties"] = {
        "file": {"type": "string", "format": "binary", "description": "the audio"},
        **fields,
        **bracketed,
    }
    form["required"] = ["file"]
    return form


_ANSWERS = ("TranscriptionResult", "DiarizedResult", "TextResult")


def _asr(summary: str) -> Schema:
    body = {"multipart/form-data": {"schema": _transcription_form()}}
    answer = {
        "description": "the transcript in the response_format asked for; with `stream`, SSE "
        "events: `transcript.text.delta` and `transcript.text.done`, or with `diarized_json` "
        "`transcript.text.segment` (the DiarizedSegment schema) and `transcript.text.done`",
        "content": {
            # anyOf: a verbose or diarized answer also has the `text` of TextResult
            JSON: {"schema": {"anyOf": [_ref(name) for name in _ANSWERS]}},
            "text/plain": {"schema": _TEXT},
            "text/vtt": {"schema": _TEXT},
            "text/event-stream": {"schema": _TEXT},
        },
    }
    job = _json(_ref("TranscriptionJob"), "with `background`: the job, queued")
    return _operation(
        summary, {"200": answer, "202": job}, requestBody={"required": True, "content": body}
    )


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": _TEXT}
_JOB_FORMAT = {
    "name": "response_format",
    "in": "query",
    "required": False,
    "schema": {"enum": ["json", "text", "verbose_json", "srt", "vtt"]},
    "description": "the rendering of `result` (the job's own response_format when left out)",
}
_STARTING_AFTER = {
    "name": "starting_after",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": -1, "default": -1},
    "description": "the index (SSE `id`) of the last event already read",
}


def _job_paths() -> Schema:
    job = {"200": _json(_ref("TranscriptionJob"))}
    events = {
        "200": {
            "description": "SSE: the events of `stream=true` (`transcript.text.delta`, then "
            "`transcript.text.done`, or an `error` event), each with its index as `id`; those "
            "so far, then live to the job's end",
            "content": {"text/event-stream": {"schema": _TEXT}},
        }
    }
    return {
        "/v1/audio/transcriptions/{job_id}": {
            "get": _operation(
                "A background transcription job; once completed with its `result`",
                job,
                parameters=[_JOB_ID, _JOB_FORMAT],
            )
        },
        "/v1/audio/transcriptions/{job_id}/events": {
            "get": _operation(
                "A job's events, resumable",
                events,
                parameters=[_JOB_ID, _STARTING_AFTER],
            )
        },
        "/v1/audio/transcriptions/{job_id}/cancel": {
            "post": _operation(
                "Cancel a job (its running window's backend work is stopped)",
                job,
                parameters=[_JOB_ID],
            )
        },
    }


_SPEECH_BODY: Schema = {
    "type": "object",
    "required": ["input", "voice"],
    "properties": {
        "model": {"type": "string", "examples": ["piper"]},
        "input": {"type": "string", "examples": ["Hello there."]},
        "voice": {"type": "string", "examples": ["alloy"]},
        "response_format": {"type": "string", "examples": ["wav", "mp3"]},
        "speed": {"type": "number"},
        "instructions": {
            "type": "string",
            "description": "how to speak: followed by models whose card says "
            "`supports_instructions`, accepted by every model",
        },
        "stream_format": {
            "enum": ["audio", "sse"],
            "description": "audio: the audio bytes; sse: `speech.audio.delta` events (base64 "
            "audio) and a last `speech.audio.done` with `usage`",
        },
        "ref_audio": {
            "type": "string",
            "description": "a data: URL, or a file inside AISTACK_TTS_REF_AUDIO_DIR",
        },
    },
    "additionalProperties": True,
}
_CHAT_BODY: Schema = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "examples": ["smollm2"]},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": ["system", "user", "assistant"]},
                    "content": _TEXT,
                },
            },
        },
        "stream": {"type": "boolean"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {
            "type": "integer",
            "minimum": 1,
            "description": "sent on as `max_tokens` too, for upstreams that know only that",
        },
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    },
    "additionalProperties": True,
}
_TOGGLES: Schema = {
    "type": "object",
    "properties": {name: {"type": "boolean"} for name in ("metrics", "access_log", "capture")},
    "additionalProperties": False,
}
# What /health and /health/ready say about the edge's dependencies.
_COMPONENTS: Schema = {
    "backends": {
        "type": "array",
        "description": "each configured backend as of the latest probe (none before the first)",
        "items": {
            "type": "object",
            "required": ["capability", "url", "up"],
            "properties": {
                "capability": {"enum": ["asr", "tts", "llm", "diarize"]},
                "url": _TEXT,
                "up": {"type": "boolean"},
            },
        },
    },
    "lease_store": {
        "type": "object",
        "required": ["kind", "reachable"],
        "properties": {"kind": {"enum": ["redis", "memory"]}, "reachable": {"type": "boolean"}},
    },
}
_BEARER = [{"bearer": []}]
_MODEL_QUERY = {"name": "model", "in": "query", "required": False, "schema": _TEXT}


def _paths() -> Schema:
    audio = {
        "description": "the backend's answer, relayed; with `stream_format: sse`, OpenAI's "
        "speech stream events",
        "content": {"*/*": {}, "text/event-stream": {}},
    }
    return {
        "/health": {
            "get": _operation(
                "Liveness of the edge, with the state of its backends and lease store",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status", "version"],
                            "properties": {
                                "status": {"const": "ok"},
                                "version": _TEXT,
                                **_COMPONENTS,
                            },
                        }
                    )
                },
            )
        },
        "/health/ready": {
            "get": _operation(
                "Readiness: 503 while a configured capability has no backend up, or the "
                "lease store is unreachable",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status", "backends", "lease_store"],
                            "properties": {"status": {"const": "ready"}, **_COMPONENTS},
                        }
                    )
                },
            )
        },
        "/v1/models": {
            "get": _operation("The models served now", {"200": _json(_ref("ModelList"))})
        },
        "/v1/models/{model_id}": {
            "get": _operation(
                "One model served now",
                {"200": _json(_ref("ModelCard"))},
                parameters=[
                    {
                        "name": "model_id",
                        "in": "path",
                        "required": True,
                        "schema": {**_TEXT, "examples": _MODEL_IDS},
                    }
                ],
            )
        },
        "/v1/audio/transcriptions": {"post": _asr("Speech to text")},
        "/v1/audio/translations": {"post": _asr("Speech to English text")},
        **_job_paths(),
        "/v1/realtime": {
            "get": _operation(
                "Live transcription: upgrades to a WebSocket that speaks OpenAI's Realtime API "
                "for transcription sessions (events in docs/realtime.md)",
                {"101": {"description": "switched to the WebSocket protocol"}},
                parameters=[
                    {
                        "name": "intent",
                        "in": "query",
                        "required": True,
                        "schema": {"const": "transcription"},
                    }
                ],
            )
        },
        "/v1/realtime/client_secrets": {
            "post": _operation(
                "An ephemeral client secret for one live transcription session: short-lived, "
                "used once (docs/realtime.md)",
                {"200": _json(_CLIENT_SECRET)},
                requestBody={"content": {JSON: {"schema": _SECRET_REQUEST}}},
            )
        },
        "/v1/audio/speech": {
            "post": _operation(
                "Text to speech (relayed to the TTS backend of `model`)",
                {"200": audio},
                requestBody={"required": True, "content": {JSON: {"schema": _SPEECH_BODY}}},
            )
        },
        "/v1/audio/voices": {
            "get": _operation(
                "The voices of a TTS model", {"200": audio}, parameters=[_MODEL_QUERY]
            ),
            "post": _operation(
                "Add a voice (relayed to the TTS backend of `model`)",
                {"200": audio},
                parameters=[_MODEL_QUERY],
                requestBody={"content": {"multipart/form-data": {"schema": _ANY_OBJECT}}},
            ),
        },
        "/v1/chat/completions": {
            "post": _operation(
                "Chat completion (relayed to the LLM upstream of `model`)",
                {
                    "200": {
                        "description": "the completion, or its SSE chunks",
                        "content": {JSON: {"schema": _ANY_OBJECT}, "text/event-stream": {}},
                    }
                },
                requestBody={"required": True, "content": {JSON: {"schema": _CHAT_BODY}}},
            )
        },
        "/metrics": {
            "get": _operation(
                "Prometheus metrics",
                {"200": {"description": "OK", "content": {"text/plain": {"schema": _TEXT}}}},
            )
        },
        "/openapi.json": {"get": _operation("This document", {"200": _json(_ANY_OBJECT)})},
        "/admin": {"get": _operation("The admin page", {"200": _html()})},
        "/admin/": {"get": _operation("The admin page", {"200": _html()})},
        "/admin/static/{name}": {
            "get": _operation(
                "An asset of the admin page",
                {"200": {"description": "OK", "content": {"*/*": {}}}},
                parameters=[{"name": "name", "in": "path", "required": True, "schema": _TEXT}],
            )
        },
        "/admin/api/status": {
            "get": _operation(
                "Backends, slot, recent requests", {"200": _json(_ANY_OBJECT)}, security=_BEARER
            )
        },
        "/admin/api/evict": {
            "post": _operation(
                "Ask a backend to drop its idle models",
                {"200": _json(_ANY_OBJECT)},
                security=_BEARER,
                requestBody=_strings_body("backend"),
            )
        },
        "/admin/api/observability": {
            "get": _operation("What is recorded", {"200": _json(_ANY_OBJECT)}, security=_BEARER),
            "post": _operation(
                "Switch what is recorded",
                {"200": _json(_ANY_OBJECT)},
                security=_BEARER,
                requestBody={"required": True, "content": {JSON: {"schema": _TOGGLES}}},
            ),
        },
        "/admin/api/models": {
            "get": _operation(
                "Each backend's weights: present, missing or fetching",
                {"200": _json(_ANY_OBJECT)},
                security=_BEARER,
            )
        },
        "/admin/api/models/pull": {
            "post": _operation(
                "Have a backend fetch a model's weights; its progress as NDJSON",
                {
                    "200": {
                        "description": "One progress event a line, as Ollama's pull streams",
                        "content": {"application/x-ndjson": {"schema": _ANY_OBJECT}},
                    }
                },
                security=_BEARER,
                requestBody=_strings_body("backend", "repo"),
            )
        },
    }


def _strings_body(*names: str) -> Schema:
    """A required JSON object of required string fields (the admin changes')."""
    schema = {"type": "object", "required": list(names), "properties": dict.fromkeys(names, _TEXT)}
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _html() -> Schema:
    return {"description": "OK", "content": {"text/html": {"schema": _TEXT}}}


@cache
def document() -> Schema:
    answers = (
        ErrorEnvelope,
        ModelList,
        ModelCard,
        TranscriptionResult,
        DiarizedResult,
        TextResult,
        TranscriptionJob,
    )
    _, schemas = models_json_schema(
        [(m, "serialization") for m in answers] + [(TranscriptionForm, "validation")],
        ref_template=_REF,
    )
    components = schemas["$defs"]
    components.pop("TranscriptionForm")  # a request body, inlined where it is read
    return {
        "openapi": "3.1.0",
        "info": {"title": "aistack edge", "version": __version__, "description": _DESCRIPTION},
        "paths": _paths(),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

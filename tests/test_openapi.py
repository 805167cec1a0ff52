"""GET /openapi.json: it documents exactly the edge's routes, and schemathesis, fuzzing
from it a live edge in front of real asr-whisper, tts-piper and llama.cpp, finds no
error answer that is not the envelope and no 5xx but the busy 503."""

import gzip
import json
from collections import Counter

import aiohttp
import httpx
import pytest
import schemathesis
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openai.types.audio import (
    TranscriptionDiarized,
    TranscriptionDiarizedSegment,
    TranscriptionTextSegmentEvent,
)

from aistack_contract.diarization import Diarization, SpeakerTurn
from aistack_contract.transcription import Word
from aistack_edge.app import create_app
from aistack_edge.asr.diarize import DIARIZE_MODEL
from aistack_edge.asr.speakers import Composer
from aistack_edge.openapi import document
from aistack_testing.edge import envelope

TOKEN = "fuzz-admin-token"
METHODS = {"get", "post", "put", "patch", "delete"}
# The TTS relay serves every /v1/audio/ path but the ASR ones; these are the documented.
# A model each body may name that a backend serves.
SERVED = {
    "/v1/chat/completions": "smollm2",
    "/v1/audio/speech": "piper",
    "/v1/audio/transcriptions": "auto",
    "/v1/audio/translations": "whisper-1",
}
RELAYED = {"/v1/audio/{path}": {"/v1/audio/speech", "/v1/audio/voices"}}


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }


def routed() -> set[tuple[str, str]]:
    """(method, path) of every route of the edge, `*` routes as the documented methods."""
    found = set()
    for route in create_app().router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical
        for served in RELAYED.get(path, {path}):
            methods = {m for m, p in documented() if p == served} if route.method == "*" else {}
            found |= {(m, served) for m in methods or {route.method}}
    return found


def test_the_transcription_fields_and_answers_are_documented():
    """OpenAI's newer fields in the form, usage and logprobs in the answers."""
    doc = document()
    form = doc["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    fields = form["multipart/form-data"]["schema"]["properties"]
    assert {"include", "chunking_strategy", "known_speaker_names"} <= set(fields)
    schemas = doc["components"]["schemas"]
    assert set(schemas["ServerVad"]["properties"]) == {
        "type", "threshold", "prefix_padding_ms", "silence_duration_ms",
    }  # fmt: skip
    assert {"usage", "logprobs"} <= set(schemas["TextResult"]["properties"])
    assert "usage" in schemas["TranscriptionResult"]["properties"]
    assert "supports_logprobs" in schemas["ModelCard"]["properties"]


def _valid(instance: object, schema: str) -> None:
    """`instance` is valid against the document's component `schema` (refs resolved in it)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": document()["components"]}
    Draft202012Validator(root).validate(instance)


def test_diarization_is_documented_in_openais_shape():
    """diarized_json, its stream event, the known-speaker fields as the SDK sends them and
    the diarizing model id, as openai-python types them and as the edge composes them."""
    doc = document()
    operation = doc["paths"]["/v1/audio/transcriptions"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"known_speaker_names[]", "known_speaker_references[]"} <= set(form)
    assert form["known_speaker_names[]"]["items"] == {"type": "string"}
    assert "diarized_json" in form["response_format"]["enum"]
    assert DIARIZE_MODEL in form["model"]["examples"]
    assert (
        DIARIZE_MODEL
        in doc["paths"]["/v1/models/{model_id}"]["get"]["parameters"][0]["schema"]["examples"]
    )
    answers = operation["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/DiarizedResult"} in answers
    assert "transcript.text.segment" in operation["responses"]["200"]["description"]
    schemas = doc["components"]["schemas"]
    result, segment = schemas["DiarizedResult"], schemas["DiarizedSegment"]
    assert set(result["properties"]) == set(TranscriptionDiarized.model_fields)
    assert set(segment["properties"]) == set(TranscriptionDiarizedSegment.model_fields)
    assert set(segment["properties"]) == set(TranscriptionTextSegmentEvent.model_fields)
    assert set(segment["required"]) == set(segment["properties"])
    assert segment["properties"]["type"]["const"] == "transcript.text.segment"
    assert result["properties"]["task"]["const"] == "transcribe"
    # What the edge composes is what the document says, and what the SDK reads.
    turns = [SpeakerTurn(start=0, end=2, speaker="S0"), SpeakerTurn(start=2, end=4, speaker="S1")]
    composer = Composer(Diarization(duration=4, turns=turns), {"S0": "A", "S1": "Ana"})
    words = [Word(start=0.1, end=0.9, word="Hello"), Word(start=2.1, end=3.0, word="Hi")]
    parts = composer.add(words) + composer.finish()
    for part in parts:
        _valid(part, "DiarizedSegment")
        TranscriptionTextSegmentEvent.model_validate(part)
    answer = {
        "task": "transcribe",
        "duration": 4.0,
        "text": "Hello Hi",
        "segments": parts,
        "usage": {"type": "duration", "seconds": 4.0},
    }
    _valid(answer, "DiarizedResult")
    assert [s.speaker for s in TranscriptionDiarized.model_validate(answer).segments] == [
        "A",
        "Ana",
    ]


def test_every_route_is_documented_and_every_documented_route_is_served():
    assert routed() == documented()


async def test_documented_paths_resolve_to_their_routes():
    app = create_app()
    for method, path in documented():
        concrete = path.replace("{model_id}", "whisper-1").replace("{name}", "admin.js")
        match = await app.router.resolve(make_mocked_request(method, concrete))
        assert match.http_exception is None, (method, path)


async def test_served_at_openapi_json(module_services):
    edge = module_services.start("aistack_edge")
    async with aiohttp.request("GET", edge.url + "/openapi.json") as r:
        assert r.status == 200
        assert await r.json() == document()


@pytest.fixture(scope="module")
def fuzzed_edge(module_services, cpu_stack_env):
    env = {**cpu_stack_env, "AISTACK_SLOT_KEY": "fuzz", "AISTACK_ADMIN_TOKEN": TOKEN}
    return module_services.start("aistack_edge", env=env)


@schemathesis.check
def error_is_the_envelope(ctx, response, case) -> None:
    """Every error answer, 5xx included, is the envelope."""
    if response.status_code >= 400:
        envelope(response.content)


@schemathesis.check
def no_server_error_but_busy(ctx, response, case) -> None:
    """No 5xx but the 503 `network` of a busy slot or a backend down: an unhandled
    exception (a 500 `unknown` envelope) fails the fuzzing."""
    if response.status_code >= 500:
        assert response.status_code == 503, response.text
        envelope(response.content, "network")


JSON_ROUTES = {"/v1/chat/completions", "/v1/audio/speech"}


def post_gzipped(url: str, body: dict) -> int:
    """`body` as gzip (schemathesis sends bodies plain), held to the same two checks."""
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    packed = gzip.compress(json.dumps(body).encode())
    response = httpx.post(url, content=packed, headers=headers, timeout=60)
    error_is_the_envelope(None, response, None)
    no_server_error_but_busy(None, response, None)
    return response.status_code


def test_fuzz(fuzzed_edge):
    """Each operation in turn; a 503 (the slot busy, a backend down) is fine as an envelope.
    Half the JSON bodies of chat and speech go gzipped."""
    api = schemathesis.openapi.from_url(fuzzed_edge.url + "/openapi.json")
    answers: Counter[str] = Counter()
    for result in api.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), served=st.booleans(), packed=st.booleans())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case, served: bool, packed: bool) -> None:
            if isinstance(case.body, dict) and case.path in SERVED:
                if served:  # else the model and voice are most likely unknown
                    case.body["model"] = SERVED[case.path]
                    if case.path == "/v1/audio/speech":
                        case.body["voice"] = "alloy"
                if case.path == "/v1/chat/completions":
                    case.body["max_tokens"] = 4  # short: the fuzzing is of the edge
                    if "max_completion_tokens" in case.body:
                        case.body["max_completion_tokens"] = 4
                if packed and case.path in JSON_ROUTES:
                    status = post_gzipped(fuzzed_edge.url + case.path, case.body)
                    answers[f"{case.method} {case.path} gzip {status}"] += 1
                    return
            response = case.call_and_validate(
                base_url=fuzzed_edge.url,
                headers={"Authorization": f"Bearer {TOKEN}"},
                additional_checks=[error_is_the_envelope, no_server_error_but_busy],
                # 503 is the busy slot (no_server_error_but_busy allows it alone);
                # schema-valid bytes are rarely valid audio
                excluded_checks=[
                    schemathesis.checks.not_a_server_error,
                    schemathesis.checks.positive_data_acceptance,
                ],
                timeout=60,
            )
            answers[f"{case.method} {case.path} {response.status_code}"] += 1

        fuzz()
    print("fuzzed:", sorted(answers.items()))

"""Every bad request gets the error envelope with its kind's status, from provider Piper."""

import json

import httpx
import openai
import pytest

from aistack_testing.processes import Service

GOOD = {"model": "piper", "voice": "alloy", "input": "Hello."}


def body_with(**changes: object) -> bytes:
    return json.dumps({k: v for k, v in {**GOOD, **changes}.items() if v is not ...}).encode()


BAD_SPEECH = {
    "not json": (b"{nope", 400, "malformed", "not valid JSON"),
    "not an object": (b"[1, 2]", 400, "malformed", "body"),
    "no input": (body_with(input=...), 400, "malformed", "input"),
    "empty input": (body_with(input=""), 400, "malformed", "input is empty"),
    "blank input": (body_with(input=" \n "), 400, "malformed", "input is empty"),
    "input not text": (body_with(input=42), 400, "malformed", "input"),
    "nothing to speak": (body_with(input="..."), 400, "malformed", "nothing to speak"),
    "too long": (body_with(input="a" * 4097), 413, "overflow", "limit is 4096"),
    "unknown voice": (body_with(voice="bob"), 400, "malformed", "unknown voice 'bob'"),
    "no voice": (body_with(voice=...), 400, "malformed", "voice"),
    "unknown model": (body_with(model="tts-9"), 400, "malformed", "unknown model 'tts-9'"),
    "no model": (body_with(model=...), 400, "malformed", "model"),
    "unknown format": (body_with(response_format="ogg"), 400, "malformed", "response_format"),
    "too slow": (body_with(speed=0.1), 400, "malformed", "speed"),
    "too fast": (body_with(speed=4.5), 400, "malformed", "speed"),
    "sse stream": (body_with(stream_format="sse"), 400, "malformed", "stream_format"),
}


def assert_envelope(response: httpx.Response, status: int, kind: str, text: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["kind"], error["provider"]) == (kind, "Piper")
    assert text in error["message"]


@pytest.mark.parametrize("case", sorted(BAD_SPEECH))
def test_bad_speech_request(piper: Service, case: str) -> None:
    body, status, kind, text = BAD_SPEECH[case]
    response = httpx.post(piper.url + "/v1/audio/speech", content=body)
    assert_envelope(response, status, kind, text)


def test_unknown_route(piper: Service) -> None:
    assert_envelope(httpx.get(piper.url + "/v1/nope"), 404, "malformed", "no such route")


def test_wrong_method(piper: Service) -> None:
    response = httpx.get(piper.url + "/v1/audio/speech")
    assert_envelope(response, 405, "malformed", "allowed: POST")


def test_sdk_sees_the_envelope(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(model="piper", voice="nobody", input="Hello.")
    assert raised.value.body["kind"] == "malformed"
    assert "unknown voice" in raised.value.body["message"]

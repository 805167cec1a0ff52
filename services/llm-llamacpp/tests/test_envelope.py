"""The envelope made of llama.cpp's and FastAPI's error bodies."""

import json

import pytest

from aistack_llm_llamacpp.envelope import error_of


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (
            400,
            {"error": {"message": "too long", "code": "context_length_exceeded"}},
            "overflow",
            "too long",
        ),
        (
            500,
            {"error": {"message": "KeyError: 'x'", "type": "internal_server_error"}},
            "unknown",
            "internal error in llama.cpp; its log has the details",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "temperature"], "msg": "not a number"}]},
            "malformed",
            "body.temperature: not a number",
        ),
        (401, {"detail": "Invalid API key"}, "malformed", "Invalid API key"),
        (503, {"detail": "Service is not available"}, "network", "Service is not available"),
        (404, "not json", "malformed", "Not Found"),
    ],
)
def test_error_of(status, body, kind, message):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    error = error_of(status, raw).body
    assert (error.kind, error.provider, error.message) == (kind, "llama.cpp", message)


def test_an_internal_error_names_the_request_not_the_exception():
    """Issue 16: an exception's type and text (paths, data) stay in the log."""
    body = json.dumps({"error": {"message": "ValueError: /models/secret.gguf", "type": "x"}})
    error = error_of(500, body.encode(), "req-77").body
    assert error.message == "internal error in llama.cpp (request req-77); its log has the details"

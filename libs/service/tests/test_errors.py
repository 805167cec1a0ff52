"""What a client sees of a backend's unexpected failure: the request id, not the exception."""

from aistack_contract.errors import AistackError, ErrorKind
from aistack_service.http import error_body


def test_an_unexpected_error_names_the_request_not_the_exception():
    body = error_body(KeyError("/models/secret-path"), "Faster-Whisper", "req-1")
    assert body.kind is ErrorKind.UNKNOWN and body.provider == "Faster-Whisper"
    assert body.message == (
        "internal error in Faster-Whisper (request req-1); its log has the details"
    )


def test_an_envelope_error_keeps_its_message():
    error = AistackError(ErrorKind.MALFORMED, "no audio stream in the upload", "Faster-Whisper")
    assert error_body(error, "Faster-Whisper", "req-2") == error.body


def test_out_of_memory_is_an_overflow():
    assert error_body(MemoryError(), "Parakeet", None).kind is ErrorKind.OVERFLOW

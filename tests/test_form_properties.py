"""Properties of the transcription form (edge/aistack_edge/asr/form.py), by hypothesis:
whatever the multipart body and its fields, the answer is the form or the envelope
(malformed, overflow), never another exception; what is well-formed reads back exactly."""

import asyncio
import os
from unittest import mock

from aiohttp import streams
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from aistack_contract.errors import AistackError, ErrorKind
from aistack_edge.asr.form import MAX_PARTS, TranscriptionForm, Upload, _validate, read_upload
from aistack_service.spool import SPOOL_ABOVE, Spool
from aistack_testing.edge import open_fds

FLAGS = ["true", "1", "yes", "on", "false", "0", "no", "off", ""]
FORMATS = ["json", "text", "verbose_json", "srt", "vtt"]
NAMES = ["file", "model", "language", "prompt", "temperature", "response_format", "stream"]
# OpenAI's newer fields, as the SDK names their parts.
NAMES += [
    "include[]",
    "chunking_strategy",
    "chunking_strategy[type]",
    "chunking_strategy[threshold]",
]

field_values = st.text(max_size=20) | st.sampled_from(
    FLAGS
    + FORMATS
    + ["0.5", "-1", "nan", "auto", "server_vad", "logprobs", '{"type": "server_vad"}']
)
fields = st.dictionaries(
    st.sampled_from(
        [*NAMES, "translate", "segment_granularity", "timestamp_granularities", "include"]
    )
    | st.text(max_size=10),
    field_values | st.lists(field_values, max_size=3),
)


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str) -> bytes:
    """A multipart/form-data body of (name, filename, value) parts, written by hand so
    that any name, even a broken one, goes out as given."""
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def read_back(spool: Spool) -> bytes:
    """All of a spooled upload, from memory or from its file."""
    body = spool.body()
    return body if isinstance(body, bytes) else body.read()


def read(body: bytes, max_bytes: int, boundary: str = "b0undary") -> Upload:
    """read_upload on a real aiohttp request whose payload is `body`."""

    async def run() -> Upload:
        payload = streams.StreamReader(
            mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop()
        )
        payload.feed_data(body)
        payload.feed_eof()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        request = make_mocked_request(
            "POST", "/v1/audio/transcriptions", headers=headers, payload=payload
        )
        return await read_upload(request, max_bytes)

    return asyncio.run(run())


def refused(call) -> ErrorKind | None:
    """The kind of envelope `call` raised, None if it returned."""
    try:
        call()
    except AistackError as error:
        return error.body.kind
    return None


@given(fields)
def test_any_fields_are_a_form_or_malformed(given_fields):
    kind = refused(lambda: _validate(dict(given_fields)))
    assert kind in (None, ErrorKind.MALFORMED)


@given(
    model=st.text(min_size=1, max_size=30).filter(str.strip),
    response_format=st.sampled_from(FORMATS),
    stream=st.sampled_from(FLAGS).map(lambda f: f.upper() if len(f) > 1 else f),
    temperature=st.floats(0, 1),
)
def test_valid_fields_read_back(model, response_format, stream, temperature):
    form = _validate(
        {
            "model": model,
            "response_format": response_format,
            "stream": stream,
            "temperature": repr(temperature),
        }
    )
    assert isinstance(form, TranscriptionForm)
    assert (form.model, form.response_format) == (model, response_format)
    assert form.stream is (stream.lower() in {"true", "1", "yes", "on"})
    assert form.temperature == temperature


@settings(max_examples=200)
@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from(NAMES) | st.text(max_size=12),
            st.none() | st.text(max_size=12),
            st.binary(max_size=300),
        ),
        max_size=5,
    ),
    max_bytes=st.integers(1, 2000),
)
def test_any_multipart_is_an_upload_or_the_envelope(parts, max_bytes):
    kind = refused(lambda: read(multipart(parts, "b0undary"), max_bytes))
    assert kind in (None, ErrorKind.MALFORMED, ErrorKind.OVERFLOW)


@given(body=st.binary(max_size=500), boundary=st.text(min_size=1, max_size=70))
def test_any_bytes_are_an_upload_or_the_envelope(body, boundary):
    kind = refused(lambda: read(body, 1000, boundary))
    assert kind in (None, ErrorKind.MALFORMED, ErrorKind.OVERFLOW)


@given(
    audio=st.binary(min_size=1, max_size=2000),
    filename=st.text(
        st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'),
        max_size=20,
    ),
    max_bytes=st.integers(1, 3000),
)
def test_the_file_reads_back_whole_or_is_an_overflow(audio, filename, max_bytes):
    """Every byte of the body counts: boundaries, part headers and names too."""
    body = multipart([("model", None, b"auto"), ("file", filename or None, audio)], "b0undary")
    kind = refused(lambda: read(body, max_bytes))
    if len(body) > max_bytes:
        assert kind is ErrorKind.OVERFLOW
    else:
        upload = read(body, max_bytes)
        assert read_back(upload.audio) == audio and upload.form.model == "auto"
        assert upload.filename == (filename or "audio") or "/" in filename  # aiohttp trims


def test_a_filename_that_aiohttp_cannot_parse_reads_back():
    """Found by fuzzing: a valid quoted filename with '%' and ';' that aiohttp's header
    parser gives up on (the part then looked nameless, as if no file came)."""
    odd = "9%2%;B`eBO|n=^Ds+;"
    upload = read(multipart([("file", odd, b"RIFF")], "b0undary"), 1000)
    assert (upload.filename, read_back(upload.audio)) == (odd, b"RIFF")


def test_a_part_with_a_broken_header_is_malformed():
    """Found by fuzzing: aiohttp's parser refuses the header with its own error."""
    body = multipart([("\x1c\x13", None, b"x"), ("file", "a.wav", b"RIFF")], "b0undary")
    assert refused(lambda: read(body, 1000)) is ErrorKind.MALFORMED


def test_part_names_count_toward_the_limit():
    """Names and headers were not counted: many parts with large names passed any limit."""
    name = "n" * 4000
    parts = [(f"{name}{i}", None, b"") for i in range(60)] + [("file", "a.wav", b"RIFF")]
    body = multipart(parts, "b0undary")
    assert len(body) > 240_000
    assert refused(lambda: read(body, 100_000)) is ErrorKind.OVERFLOW


def test_the_number_of_parts_is_bounded():
    parts = [("model", None, b"auto")] * MAX_PARTS + [("file", "a.wav", b"RIFF")]
    assert refused(lambda: read(multipart(parts, "b0undary"), 10**6)) is ErrorKind.MALFORMED


def test_an_unknown_transfer_encoding_is_malformed():
    """aiohttp raised RuntimeError for it: a 500."""
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="model"\r\n'
        b"Content-Transfer-Encoding: x-rot13\r\n\r\nnhgb\r\n"
        + multipart([("file", "a.wav", b"RIFF")], "b0undary")
    )
    assert refused(lambda: read(body, 10**6)) is ErrorKind.MALFORMED


def test_a_base64_field_is_decoded():
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="model"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nYXV0bw==\r\n"
        + multipart([("file", "a.wav", b"RIFF")], "b0undary")
    )
    assert read(body, 10**6).form.model == "auto"


def test_a_large_upload_is_spooled_to_a_file_and_reads_back():
    audio = os.urandom(3 * SPOOL_ABOVE)
    upload = read(multipart([("file", "a.wav", audio)], "b0undary"), 10 * SPOOL_ABOVE)
    try:
        assert upload.audio.on_disk and upload.audio.size == len(audio)
        assert read_back(upload.audio) == audio
    finally:
        upload.audio.close()


def test_a_spooled_upload_refused_past_the_limit_leaves_no_file():
    """Refused after it went to disk: its file is closed (and so gone) at once."""
    before = open_fds(os.getpid())
    body = multipart([("file", "a.wav", bytes(3 * SPOOL_ABOVE))], "b0undary")
    assert refused(lambda: read(body, 2 * SPOOL_ABOVE)) is ErrorKind.OVERFLOW
    assert open_fds(os.getpid()) == before

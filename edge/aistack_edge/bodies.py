"""Request bodies read within bounds: JSON bodies by their own small limit, counted on
the bytes after decompression while they are read.

aiohttp inflates a `Content-Encoding: gzip` (or deflate, br, zstd) body before a
handler sees it, a window at a time: a few kilobytes of gzip can become gigabytes.
Counting what comes out of the reader, and stopping at the limit, bounds a compressed
body exactly as a plain one. A body in any other encoding is refused: the edge could
neither read it nor say what it holds.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from aistack_edge.errors import malformed, overflow, quoted
from aistack_service.spool import Spool

# What aiohttp decodes before the handler sees the body.
DECODED = frozenset({"gzip", "deflate", "br", "zstd"})
_CHUNK = 1 << 16
READ_BODY = web.RequestKey("read_body", bytearray)
"""A body that `read_bounded` read whole, kept on its request (for capture)."""


def check_encoding(request: web.Request) -> None:
    """Refuse a body whose Content-Encoding the edge does not decode."""
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if encoding not in DECODED | {"identity", ""}:
        raise malformed(
            f"Content-Encoding {quoted(encoding)} is not supported: send the body plain, or as "
            f"{', '.join(sorted(DECODED))}"
        )


def is_json(request: web.Request) -> bool:
    """Whether the request's Content-Type says JSON (`application/json`, `…+json`)."""
    kind = request.content_type
    return kind == "application/json" or kind.endswith("+json")


async def read_bounded(request: web.Request, max_bytes: int, what: str) -> bytearray:
    """The whole body, decoded; past `max_bytes` (decoded) it is refused with 413
    `overflow` as soon as the count passes it, the rest never read. A bytearray, not a
    bytes copy of what may be the whole upload limit."""
    body = bytearray()
    async for chunk in _counted(request, max_bytes, what):
        body += chunk
    request[READ_BODY] = body
    return body


async def read_spooled(request: web.Request, max_bytes: int, what: str) -> Spool:
    """The whole body, as read_bounded, into a spool (a file above its threshold), closed
    when the request's handling ends, however it ends."""
    spool = Spool()
    try:
        async for chunk in _counted(request, max_bytes, what):
            await spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    close_with(request, spool)
    return spool


def close_with(request: web.Request, spool: Spool) -> None:
    """Close `spool` when the request's handling ends (an answer, an error, a hang-up):
    the route need not remember it."""
    request.task.add_done_callback(lambda _: spool.close())


async def _counted(request: web.Request, max_bytes: int, what: str) -> AsyncIterator[bytes]:
    """The body's chunks, decoded, counted against `max_bytes`."""
    check_encoding(request)
    too_large = overflow(f"{what} is larger than the {_shown(max_bytes)} limit")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    received = 0
    try:
        while chunk := await request.content.read(_CHUNK):
            received += len(chunk)
            if received > max_bytes:
                stop_reading(request)
                raise too_large
            yield chunk
    except (HttpProcessingError, RequestPayloadError):  # a broken gzip stream, say
        stop_reading(request)
        raise malformed("the body can't be decoded as its Content-Encoding says") from None


def stop_reading(request: web.Request) -> None:
    """Read no more of this connection: the rest of a refused body is dropped as it
    arrives, never parsed nor inflated. (After an answer aiohttp reads on what is left
    of the body, up to 10 s: the rest of a gzip bomb, inflated on the event loop.)"""
    request.protocol.close()


async def read_json_body(request: web.Request, max_bytes: int) -> bytearray:
    """A JSON route's body, its type checked and its size bounded (see read_bounded)."""
    if hdrs.CONTENT_TYPE in request.headers and not is_json(request):
        raise malformed(
            f"the body must be JSON (Content-Type: application/json), not {request.content_type}"
        )
    return await read_bounded(request, max_bytes, "the JSON body")


def parse_json(body: bytes | bytearray, **options: Any) -> Any:
    """`body` parsed; anything that is not UTF-8 JSON, nesting too deep for the parser
    included, is 400 `malformed`. `options` go to `json.loads` (an object hook, say)."""
    try:
        return json.loads(body.decode(), **options)
    except RecursionError:
        raise malformed("the JSON body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise malformed(f"the body is not valid JSON (UTF-8): {exc}") from None


def _shown(max_bytes: int) -> str:
    """A limit for a message: in MB when it is one or more, else in bytes."""
    mb = max_bytes / 2**20
    return f"{mb:g} MB" if mb >= 1 else f"{max_bytes} byte"

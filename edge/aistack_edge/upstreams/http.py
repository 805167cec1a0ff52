"""What every upstream client shares: its failures as envelopes, and the headers a relay passes."""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Iterable, Iterator

import aiohttp
from multidict import CIMultiDict, MultiMapping
from pydantic import BaseModel, ValidationError

from aistack_contract.errors import AistackError, ErrorEnvelope, ErrorKind, kind_for_status
from aistack_service.spool import Spool

# RFC 9110 §7.6.1: headers about one connection, never relayed (lower case); so are
# the Proxy-* ones.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)


def end_to_end(headers: MultiMapping[str], drop: Iterable[str] = ()) -> CIMultiDict[str]:
    """`headers` less the hop-by-hop ones, those the Connection header names, and `drop`."""
    named = {
        token.strip().lower()
        for value in headers.getall("Connection", [])
        for token in value.split(",")
    }
    excluded = HOP_BY_HOP | named | {name.lower() for name in drop}
    return CIMultiDict(
        (name, value)
        for name, value in headers.items()
        if name.lower() not in excluded and not name.lower().startswith("proxy-")
    )


async def answer_head(
    pending: Awaitable[aiohttp.ClientResponse], timeout_s: float
) -> aiohttp.ClientResponse:
    """The response, its head read, within `timeout_s`: sending the body included, which
    aiohttp's `sock_read` does not cover (a backend that stops reading would hang it)."""
    async with asyncio.timeout(timeout_s):
        return await pending


def unreachable(provider: str, url: str, exc: BaseException) -> AistackError:
    detail = str(exc) or ("no answer in time" if isinstance(exc, TimeoutError) else "")
    detail = detail or type(exc).__name__
    return AistackError(
        ErrorKind.NETWORK, f"{provider} at {url} is unreachable: {detail}", provider
    )


@contextlib.contextmanager
def backend_failures(provider: str, url: str, answer: str) -> Iterator[None]:
    """A call's failures as envelopes: unreachable (`network`), or an `answer` that is
    not the protocol's shape (`unknown`)."""
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unreachable(provider, url, exc) from exc
    except ValidationError as exc:
        raise AistackError(
            ErrorKind.UNKNOWN, f"bad {answer} from {provider}: {exc}", provider
        ) from exc


def audio_form(options: BaseModel, audio: Spool, filename: str) -> aiohttp.FormData:
    """The internal protocol's upload: the options as JSON, then the audio (from memory,
    or a file of its own that aiohttp sends a window at a time)."""
    form = aiohttp.FormData()
    form.add_field("options", options.model_dump_json(), content_type="application/json")
    form.add_field("file", audio.body(), filename=filename, content_type="application/octet-stream")
    return form


def _message_of(body: bytes) -> str | None:
    """The message of an OpenAI-style (`{"error": {"message"}}`), older vLLM's flat
    (`{"object": "error", "message"}`) or FastAPI-style (`{"detail"}`) error body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if data.get("object") == "error":
        error = data
    found = error.get("message") if isinstance(error, dict) else error or data.get("detail")
    if found is None:
        return None
    return found if isinstance(found, str) else json.dumps(found)


async def upstream_error(response: aiohttp.ClientResponse, provider: str) -> AistackError:
    """An upstream's non-2xx answer as our envelope, its message kept."""
    body = await response.read()
    try:
        error = ErrorEnvelope.model_validate_json(body).error
        return AistackError(error.kind, error.message, error.provider)
    except ValidationError:
        text = _message_of(body) or body.decode(errors="replace").strip()
        return AistackError(
            kind_for_status(response.status), text[:500] or response.reason or "", provider
        )

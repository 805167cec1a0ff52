"""The client of the TTS backends: OpenAI's `/v1/audio/*`, relayed as it is."""

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

from aistack_edge.catalog import Entry
from aistack_edge.middleware import REQUEST_ID
from aistack_edge.observability.tracing import backend_call
from aistack_edge.upstreams.http import answer_head, end_to_end, unreachable, upstream_error
from aistack_service.spool import Spool

Body = bytes | bytearray | Spool | None


@contextlib.asynccontextmanager
async def relay(
    session: aiohttp.ClientSession,
    request: web.Request,
    backend: Entry,
    body: Body,
    timeout_s: float,
    job_id: str,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send `request` on to `backend` (its path and end-to-end headers, with `body`) as
    the backend's job `job_id`; yield the backend's 2xx response with its body still
    unread.

    A non-2xx answer raises its envelope. Leaving the block early (a client hang-up)
    closes the connection, which stops the backend's work; leaving it normally keeps
    the connection for the next request.
    """
    provider, method = backend.provider, request.method
    # The target's path and query, as sent: an absolute-form target (`POST http://h/…`)
    # names a host of the client's, not a path to append.
    url = URL(backend.upstream + request.rel_url.raw_path_qs, encoded=True)
    # The body was read decoded: it goes on plain, whatever encoding it came in.
    headers = end_to_end(
        request.headers, drop=("Host", "Expect", "Content-Length", "Content-Encoding")
    )
    headers[REQUEST_ID] = job_id
    timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_s)
    with backend_call("tts.request", headers, str(url.origin())):
        try:
            data = body.body() if isinstance(body, Spool) else body
            sent = session.request(
                method, url, data=data, headers=headers, timeout=timeout, allow_redirects=False
            )
            response = await answer_head(sent, timeout_s)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unreachable(provider, str(url.origin()), exc) from exc
        try:
            if response.status >= 400:
                raise await upstream_error(response, provider)
            yield response
        except BaseException:
            response.close()
            raise
        response.release()


async def chunks(response: aiohttp.ClientResponse, provider: str) -> AsyncIterator[bytes]:
    """The response body as it arrives; a backend that breaks off raises its envelope."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unreachable(provider, str(response.url.origin()), exc) from exc

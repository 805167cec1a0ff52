"""The client of the internal ASR protocol that every ASR backend speaks."""

import logging
from collections.abc import AsyncIterator

import aiohttp

from aistack_contract.events import BackendEvent, decode_backend_event
from aistack_contract.transcription import TranscribeOptions
from aistack_edge.catalog import Entry
from aistack_edge.middleware import REQUEST_ID
from aistack_edge.observability.tracing import backend_call
from aistack_edge.upstreams.http import answer_head, audio_form, backend_failures, upstream_error
from aistack_service.spool import Spool

log = logging.getLogger(__name__)


async def transcribe(
    session: aiohttp.ClientSession,
    backend: Entry,
    audio: Spool,
    filename: str,
    options: TranscribeOptions,
    request_id: str,
    timeout_s: float,
) -> AsyncIterator[BackendEvent]:
    """POST the audio to a backend's /transcribe and yield its events as they arrive.

    Closing the generator closes the connection, which cancels the backend's work.
    """
    url, provider = backend.upstream, backend.provider
    form = audio_form(options, audio, filename)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_s)
    headers = {REQUEST_ID: request_id}
    with backend_failures(provider, url, "event"), backend_call("asr.transcribe", headers, url):
        sent = session.post(url + "/transcribe", data=form, headers=headers, timeout=timeout)
        async with await answer_head(sent, timeout_s) as response:
            if response.status != 200:
                raise await upstream_error(response, provider)
            async for line in response.content:
                if line.strip():
                    yield decode_backend_event(line)

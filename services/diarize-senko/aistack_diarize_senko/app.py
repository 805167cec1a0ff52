"""The ASR shell's app (GET /info, /status, POST /evict, DELETE /jobs/{id}, the model
cache and its keep-alive) with POST /diarize: multipart `options` (DiarizeOptions),
`file` (the audio) and up to four `reference` clips; a Diarization as JSON."""

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Generator

import numpy as np
from aiohttp import web
from pydantic import ValidationError

from aistack_asr.app import SERVICE
from aistack_asr.app import create_app as create_shell
from aistack_asr.audio import Audio, decode_audio
from aistack_asr.service import TRACER, AsrService
from aistack_contract.diarization import MAX_REFERENCES, Diarization, DiarizeOptions
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.jobs import JobCancelled, TrackedJob
from aistack_diarize_senko.backend import SenkoBackend
from aistack_diarize_senko.settings import SenkoSettings
from aistack_service.http import REQUEST_ID
from aistack_service.spool import Spool
from aistack_service.worker import Worker

log = logging.getLogger("aistack_diarize_senko")

_CHUNK = 1 << 16
REFERENCE_MAX_S = 30.0
"""A reference clip longer than this is refused (OpenAI takes 2 to 10 s; the edge checks
that, this only keeps a clip from being a second recording)."""


class SenkoService(AsrService):
    backend: SenkoBackend

    def diarize(
        self, model_id: str, audio: Audio, references: list[np.ndarray], request_id: str
    ) -> Worker:
        def work(cancel: threading.Event) -> Generator[Diarization | None, None, None]:
            with (
                self.cache.use(model_id) as model,
                TRACER.start_as_current_span("inference", attributes={"model": model_id}),
            ):
                yield self.backend.diarize(model, audio, references, cancel)

        return self.launch(work, request_id)


async def diarize(request: web.Request) -> web.Response:
    service: SenkoService = request.app[SERVICE]  # type: ignore[assignment]
    provider = service.backend.provider
    with service.jobs.track(request[REQUEST_ID]) as tracked:
        try:
            options, file, clips = await _read_body(request, service)
            with contextlib.closing(file):
                return await _run(request, service, tracked, options, file, clips)
        except JobCancelled:
            raise AistackError(ErrorKind.NETWORK, "the job was cancelled", provider) from None


async def _run(
    request: web.Request,
    service: SenkoService,
    tracked: TrackedJob,
    options: DiarizeOptions,
    file: Spool,
    clips: list[bytes],
) -> web.Response:
    provider = service.backend.provider
    service.card(options.model)
    audio = await asyncio.to_thread(
        Audio.open, file.reader(), provider, service.settings.max_audio_sec
    )
    references = [
        await asyncio.to_thread(decode_audio, clip, provider, REFERENCE_MAX_S) for clip in clips
    ]
    tracked.check()
    started = time.monotonic()
    job = service.diarize(options.model, audio, references, request[REQUEST_ID])
    tracked.on_cancel(job.stop)
    try:
        result = await job.next()
        if result is None or job.cancel.is_set():
            raise AistackError(ErrorKind.NETWORK, "the job was cancelled", provider)
        log.info(
            "%s: %.1f s of audio, %d turns of %d speakers in %.2f s",
            request[REQUEST_ID], result.duration, len(result.turns), len(result.speakers),
            time.monotonic() - started,
        )  # fmt: skip
        return web.json_response(result.model_dump(mode="json"))
    finally:
        job.stop()  # a no-op when the job has ended; else it cancels the work
        await job.finished()  # tracked until its compute has stopped


async def _read_body(
    request: web.Request, service: AsrService
) -> tuple[DiarizeOptions, Spool, list[bytes]]:
    provider = service.backend.provider
    max_bytes = int(service.settings.max_upload_mb * 2**20)

    def malformed(message: str) -> AistackError:
        return AistackError(ErrorKind.MALFORMED, message, provider)

    if not request.content_type.startswith("multipart/"):
        raise malformed("POST /diarize takes multipart/form-data: `options`, `file`, `reference`")
    options: DiarizeOptions | None = None
    file: Spool | None = None
    clips: list[bytes] = []
    try:
        async for part in await request.multipart():
            if part.name == "options":
                options = DiarizeOptions.model_validate_json(await part.read())
            elif part.name == "file" and file is None:
                file = Spool(provider)
                while chunk := await part.read_chunk(_CHUNK):
                    if file.size + len(chunk) > max_bytes:
                        raise AistackError(
                            ErrorKind.OVERFLOW, f"the upload is over {max_bytes} bytes", provider
                        )
                    await file.write(chunk)
            elif part.name == "reference":
                if len(clips) == MAX_REFERENCES:
                    raise malformed(f"at most {MAX_REFERENCES} reference clips")
                clips.append(bytes(await part.read()))
            else:
                await part.release()
    except (ValueError, AssertionError) as exc:
        if file is not None:
            file.close()
        message = f"bad options: {exc}" if isinstance(exc, ValidationError) else str(exc)
        raise malformed(f"unreadable body: {message}") from None
    except BaseException:
        if file is not None:
            file.close()
        raise
    if options is None or file is None:
        if file is not None:
            file.close()
        raise malformed("the `options` and `file` parts are both needed")
    return options, file, clips


def create_app(backend: SenkoBackend, settings: SenkoSettings) -> web.Application:
    app = create_shell(backend, settings, SenkoService(backend, settings))
    app.router.add_post("/diarize", diarize)
    return app

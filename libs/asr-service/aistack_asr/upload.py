"""Read POST /transcribe's multipart body: the `options` part and the `file` part, the
file spooled to a temporary file once it is not small (its audio is decoded from there
a piece at a time)."""

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.transcription import TranscribeOptions
from aistack_service.spool import Spool

# The file part is read this much at a time (aiohttp's default is 8 KiB): a two-hour
# recording is hundreds of megabytes.
_CHUNK = 1 << 16
# What aiohttp raises for a body that is not well-formed multipart.
_UNREADABLE = (ValueError, AssertionError, HttpProcessingError)


async def read_transcribe_body(
    request: web.Request, provider: str, max_bytes: int
) -> tuple[TranscribeOptions, Spool]:
    """The options and the file (the caller closes it: a spooled file is then removed).
    A file over `max_bytes` is refused with overflow while it is read."""

    def malformed(message: str) -> AistackError:
        return AistackError(ErrorKind.MALFORMED, message, provider)

    if not request.content_type.startswith("multipart/"):
        raise malformed("POST /transcribe takes multipart/form-data with `options` and `file`")
    try:
        options, file = await _read_parts(request, provider, max_bytes)
    except _UNREADABLE as exc:
        raise malformed(f"unreadable multipart body: {exc}") from None
    except ValidationError as exc:
        raise malformed(f"bad options: {exc}") from None
    if options is None:
        if file is not None:
            file.close()
        raise malformed("the `options` part is missing")
    if file is None:
        raise malformed("the `file` part is missing")
    return options, file


async def _read_parts(
    request: web.Request, provider: str, max_bytes: int
) -> tuple[TranscribeOptions | None, Spool | None]:
    options: TranscribeOptions | None = None
    file: Spool | None = None
    try:
        async for part in await request.multipart():
            if part.name == "options":
                options = TranscribeOptions.model_validate_json(await part.read())
            elif part.name == "file" and file is None:
                file = Spool(provider)
                while chunk := await part.read_chunk(_CHUNK):
                    if file.size + len(chunk) > max_bytes:
                        raise AistackError(
                            ErrorKind.OVERFLOW,
                            f"the upload is larger than the limit of {max_bytes} bytes",
                            provider,
                        )
                    await file.write(chunk)
            else:
                await part.release()
    except BaseException:
        if file is not None:
            file.close()
        raise
    return options, file

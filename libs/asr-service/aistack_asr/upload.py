"""Read POST /transcribe's multipart body: the `options` part and the `file` part."""

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.transcription import TranscribeOptions

# What aiohttp raises for a body that is not well-formed multipart.
_UNREADABLE = (ValueError, AssertionError, HttpProcessingError)


async def read_upload(request: web.Request, provider: str) -> tuple[TranscribeOptions, bytes]:
    def malformed(message: str) -> AistackError:
        return AistackError(ErrorKind.MALFORMED, message, provider)

    if not request.content_type.startswith("multipart/"):
        raise malformed("POST /transcribe takes multipart/form-data with `options` and `file`")
    try:
        options, data = await _read_parts(request)
    except _UNREADABLE as exc:
        raise malformed(f"unreadable multipart body: {exc}") from None
    except ValidationError as exc:
        raise malformed(f"bad options: {exc}") from None
    if options is None:
        raise malformed("the `options` part is missing")
    if data is None:
        raise malformed("the `file` part is missing")
    return options, data


async def _read_parts(request: web.Request) -> tuple[TranscribeOptions | None, bytes | None]:
    options: TranscribeOptions | None = None
    data: bytes | None = None
    async for part in await request.multipart():
        if part.name == "options":
            options = TranscribeOptions.model_validate_json(await part.read())
        elif part.name == "file":
            data = bytes(await part.read())
        else:
            await part.release()
    return options, data

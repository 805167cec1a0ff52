"""Read POST /transcribe's multipart body: the `options` part and the `file` part."""

from aiohttp import web
from pydantic import ValidationError

from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.transcription import TranscribeOptions


async def read_upload(request: web.Request, provider: str) -> tuple[TranscribeOptions, bytes]:
    def malformed(message: str) -> AistackError:
        return AistackError(ErrorKind.MALFORMED, message, provider)

    if not request.content_type.startswith("multipart/"):
        raise malformed("POST /transcribe takes multipart/form-data with `options` and `file`")
    options: TranscribeOptions | None = None
    data: bytes | None = None
    reader = await request.multipart()
    async for part in reader:
        if part.name == "options":
            try:
                options = TranscribeOptions.model_validate_json(await part.read())
            except ValidationError as exc:
                raise malformed(f"bad options: {exc}") from None
        elif part.name == "file":
            data = bytes(await part.read())
        else:
            await part.release()
    if options is None:
        raise malformed("the `options` part is missing")
    if data is None:
        raise malformed("the `file` part is missing")
    return options, data

"""`python -m aistack_<backend>`: parse --host/--port, build the backend, serve."""

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from aistack_asr.app import create_app
from aistack_asr.backend import Backend
from aistack_asr.settings import AsrSettings
from aistack_service import cli

log = logging.getLogger("aistack_asr")

S = TypeVar("S", bound=AsrSettings)


def serve(
    settings_type: type[S],
    make_backend: Callable[[S], Backend],
    argv: Sequence[str] | None = None,
) -> None:
    settings = settings_type()
    name = settings_type.__module__.split(".")[0].removeprefix("aistack_").replace("_", "-")
    host, port = cli.address(name, settings.host, settings.port, argv)
    settings = settings.model_copy(update={"host": host, "port": port})
    cli.start_logging(name, settings)
    backend = make_backend(settings)
    log.info(
        "%s serving %s on %s:%d",
        backend.provider, ", ".join(c.id for c in backend.cards()) or "no models", host, port,
    )  # fmt: skip
    cli.run(create_app(backend, settings), host, port)

"""`python -m aistack_<backend>`: parse --host/--port, build the backend, serve."""

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from aiohttp import web

from aistack_asr.app import create_app
from aistack_asr.backend import Backend
from aistack_asr.settings import AsrSettings
from aistack_contract.telemetry import setup_tracing

log = logging.getLogger("aistack_asr")

S = TypeVar("S", bound=AsrSettings)


def serve(
    settings_type: type[S],
    make_backend: Callable[[S], Backend],
    argv: Sequence[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(description=f"aistack ASR backend ({settings_type.__name__})")
    parser.add_argument("--host", help="address to listen on")
    parser.add_argument("--port", type=int, help="port to listen on")
    args = parser.parse_args(argv)
    settings = settings_type(**{k: v for k, v in vars(args).items() if v is not None})
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    backend = make_backend(settings)
    setup_tracing(f"aistack-asr ({backend.provider})", settings.trace_file)
    log.info(
        "%s serving %s on %s:%d",
        backend.provider, ", ".join(c.id for c in backend.cards()) or "no models",
        settings.host, settings.port,
    )  # fmt: skip
    web.run_app(
        create_app(backend, settings),
        host=settings.host,
        port=settings.port,
        handler_cancellation=True,
        access_log=None,
        print=None,
    )

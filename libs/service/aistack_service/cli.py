"""`python -m aistack_<backend> [--host H] [--port P]`: what every backend's `__main__`
does before and around its app: the command line, logging, tracing, serving."""

import argparse
import logging
from collections.abc import Sequence

from aiohttp import web

from aistack_contract.telemetry import setup_tracing
from aistack_service.settings import ServiceSettings

log = logging.getLogger("aistack_service")


def address(name: str, host: str, port: int, argv: Sequence[str] | None = None) -> tuple[str, int]:
    """The address to listen on: `--host` and `--port`, else the settings' `host`, `port`."""
    parser = argparse.ArgumentParser(prog=name, description=f"the aistack {name} service")
    parser.add_argument("--host", default=host, help=f"address to listen on ({host})")
    parser.add_argument("--port", type=int, default=port, help=f"port to listen on ({port})")
    args = parser.parse_args(argv)
    return args.host, args.port


def start_logging(name: str, settings: ServiceSettings) -> None:
    """Log lines to stderr at `AISTACK_LOG_LEVEL`; spans as the settings say."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    setup_tracing(f"aistack-{name}", settings.trace_file)


def run(app: web.Application, host: str, port: int) -> None:
    """Serve `app` until SIGINT or SIGTERM; a request's handler is cancelled when its
    client goes away (the job it started stops with it)."""
    web.run_app(
        app,
        host=host,
        port=port,
        handler_cancellation=True,
        access_log=None,  # the request context logs one line a request
        print=lambda *_: log.info("listening on http://%s:%s", host, port),
    )

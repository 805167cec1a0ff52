"""`python -m aistack_diarize_senko [--host H] [--port P]`."""

import logging
from collections.abc import Sequence

from aistack_diarize_senko.app import create_app
from aistack_diarize_senko.backend import SenkoBackend
from aistack_diarize_senko.settings import SenkoSettings
from aistack_service import cli

log = logging.getLogger("aistack_diarize_senko")


def main(argv: Sequence[str] | None = None) -> None:
    settings = SenkoSettings()
    host, port = cli.address("diarize-senko", settings.host, settings.port, argv)
    settings = settings.model_copy(update={"host": host, "port": port})
    cli.start_logging("diarize-senko", settings)
    backend = SenkoBackend(settings)
    log.info("senko diarizing on %s (%s) at %s:%d", settings.device, backend.model_id, host, port)
    cli.run(create_app(backend, settings), host, port)


if __name__ == "__main__":
    main()

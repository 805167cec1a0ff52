"""`python -m aistack_tts_piper [--host H] [--port P]`: run the Piper TTS service."""

import argparse
import logging

from aiohttp import web

from aistack_contract.telemetry import setup_tracing
from aistack_tts_piper.app import create_app
from aistack_tts_piper.settings import PiperSettings


def main() -> None:
    settings = PiperSettings()
    parser = argparse.ArgumentParser(prog="aistack_tts_piper", description=__doc__)
    parser.add_argument("--host", default=settings.piper_host)
    parser.add_argument("--port", type=int, default=settings.piper_port)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    setup_tracing("aistack-tts-piper", settings.trace_file)
    web.run_app(
        create_app(settings),
        host=args.host,
        port=args.port,
        handler_cancellation=True,
        access_log=None,
        print=lambda *_: logging.getLogger("aistack_tts_piper").info(
            "listening on http://%s:%s", args.host, args.port
        ),
    )


if __name__ == "__main__":
    main()

"""`python -m aistack_edge [--host H] [--port P]`: run the edge."""

import argparse
import asyncio
import functools
import gc
import logging

from aistack_contract.telemetry import setup_tracing
from aistack_edge.app import create_app
from aistack_edge.config import EdgeSettings
from aistack_edge.serve import serve


def main() -> None:
    settings = EdgeSettings()
    parser = argparse.ArgumentParser(prog="aistack_edge", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    setup_tracing("aistack-edge", settings.trace_file)
    # What is made so far (modules, classes: most of the heap) lives as long as the
    # process: out of the collector's sight, a full collection scans only what comes
    # after, instead of stopping the event loop for 20 ms or more mid-burst.
    gc.freeze()
    listening = functools.partial(
        logging.getLogger("aistack_edge").info, "listening on http://%s:%s", args.host, args.port
    )
    asyncio.run(serve(create_app(settings), args.host, args.port, listening))


if __name__ == "__main__":
    main()

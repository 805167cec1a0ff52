"""A bare aiohttp server that answers every request with the slot-busy 503 (the same
envelope and headers as the edge's): the floor under a burst's 503s, what aiohttp
itself costs with none of the edge's code.

    python -m busy_floor --port P   (with bench/ on PYTHONPATH)
"""

import argparse
import gc

from aiohttp import web

from aistack_edge.errors import SlotBusy
from aistack_edge.middleware import error_response

BUSY = SlotBusy("tts piper (request 0123456789abcdef0123456789abcdef)", 5)


async def refuse(request: web.Request) -> web.Response:
    await request.read()
    return error_response(BUSY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", refuse)
    gc.freeze()  # as the edge does
    web.run_app(app, host="127.0.0.1", port=parser.parse_args().port, access_log=None, print=None)


if __name__ == "__main__":
    main()

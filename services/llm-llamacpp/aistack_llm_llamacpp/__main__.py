"""`python -m aistack_llm_llamacpp [--host H] [--port P]`: run the embedded CPU LLM."""

import argparse
import logging

import uvicorn

from aistack_contract.telemetry import setup_tracing
from aistack_llm_llamacpp.app import create_app
from aistack_llm_llamacpp.settings import LlamaCppSettings


def main() -> None:
    settings = LlamaCppSettings()
    parser = argparse.ArgumentParser(prog="aistack_llm_llamacpp", description=__doc__)
    parser.add_argument("--host", default=settings.llamacpp_host)
    parser.add_argument("--port", type=int, default=settings.llamacpp_port)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    setup_tracing("aistack-llm-llamacpp", settings.trace_file)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        access_log=False,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()

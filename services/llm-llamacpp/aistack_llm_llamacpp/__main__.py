"""`python -m aistack_llm_llamacpp [--host H] [--port P]`: run the embedded CPU LLM."""

import uvicorn

from aistack_llm_llamacpp.app import create_app
from aistack_llm_llamacpp.settings import LlamaCppSettings
from aistack_service import cli


def main() -> None:
    settings = LlamaCppSettings()
    host, port = cli.address("llm-llamacpp", settings.llamacpp_host, settings.llamacpp_port)
    cli.start_logging("llm-llamacpp", settings)
    # llama.cpp's server is a FastAPI app: uvicorn serves it, not aiohttp.
    uvicorn.run(
        create_app(settings), host=host, port=port, access_log=False, timeout_graceful_shutdown=2
    )


if __name__ == "__main__":
    main()

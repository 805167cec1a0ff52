"""`python -m aistack_tts_qwen3 [--host H] [--port P] [--dry-run]`: become the Qwen3-TTS server."""

import argparse
import os
import shlex
import sys

from aistack_tts_qwen3.launcher import command, environment, missing_weights
from aistack_tts_qwen3.settings import Qwen3Settings


def main() -> None:
    settings = Qwen3Settings()
    parser = argparse.ArgumentParser(prog="aistack_tts_qwen3", description=__doc__)
    parser.add_argument("--host", default=settings.qwen3_host)
    parser.add_argument("--port", type=int, default=settings.qwen3_port)
    parser.add_argument("--dry-run", action="store_true", help="print the command and exit")
    args = parser.parse_args()
    settings = settings.model_copy(update={"qwen3_host": args.host, "qwen3_port": args.port})
    argv, env = command(settings), environment(settings, os.environ)
    if args.dry_run:
        print(shlex.join(argv), flush=True)
        return
    if missing := missing_weights(settings):  # say why, instead of vLLM's deep traceback
        sys.exit(f"{missing}: fetch them with `make models` (docs/deploy.md)")
    print(shlex.join(argv), flush=True)
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main()

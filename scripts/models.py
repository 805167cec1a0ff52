"""`make models`: every GPU backend's weights into the folders the backends load them from
(aistack_service.weights does the work; a backend's own `POST /weights/pull` runs the same).

    python scripts/models.py --root DIR [--whisper large-v3,small] [--only asr-whisper,...]
    python scripts/models.py --root DIR --from OTHER     # copy from a filled folder instead
    python scripts/models.py --root DIR --check          # say what is there; fetch nothing

DIR holds one folder per backend, each the backend's `/models`: whisper/, parakeet/,
sensevoice/, qwen3/ (compose mounts each volume there in the `models` service).
"""

import argparse
import sys
from pathlib import Path

from aistack_service.weights import catalogue, chown, locked, run, summary, whisper_sizes


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="one folder per backend")
    parser.add_argument(
        "--whisper",
        default="",
        help="Whisper sizes, comma-separated (default: AISTACK_WHISPER_SIZES, or large-v3)",
    )
    parser.add_argument("--only", default="", help="backends, comma-separated (default: all)")
    parser.add_argument("--from", dest="source", type=Path, help="copy from this folder")
    parser.add_argument("--check", action="store_true", help="only say what is there")
    parser.add_argument("--revision", default="main")
    parser.add_argument("--chown", help="UID[:GID] to give what is there when done")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    wanted = catalogue(whisper_sizes(args.whisper))
    if args.only:
        names = {n.strip() for n in args.only.split(",")}
        unknown = names - {w.backend for w in wanted}
        if unknown:
            print(f"unknown backend(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        wanted = [w for w in wanted if w.backend in names]
    # One run at a time on a folder (`make models` beside compose's `up`): the second waits.
    with locked(args.root):
        outcomes = run(
            args.root, wanted, source=args.source, only_check=args.check, revision=args.revision
        )
    if args.chown:
        chown(args.root, args.chown)
    print(summary(outcomes, args.root))
    return 1 if any(o.status in ("failed", "missing") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

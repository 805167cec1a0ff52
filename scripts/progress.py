"""Show a long, quiet build's progress: read its output on stdin, keep all of it in a log
file, and print one short line every PERIOD_S seconds (the build step reached, the time so
far) instead of thousands.

    pip wheel -v ... 2>&1 | python scripts/progress.py build.log
"""

import re
import sys
import time
from pathlib import Path

PERIOD_S = 20.0
# Ninja counts steps as [12/345]; make as [ 45%].
_STEP = re.compile(r"\[\s*(\d+/\d+|\d+%)\]")


def follow(lines, log, out, period_s: float = PERIOD_S, clock=time.monotonic) -> None:
    started = last = clock()
    step = None
    for line in lines:
        log.write(line)
        if found := _STEP.search(line):
            step = found.group(1)
        now = clock()
        if now - last >= period_s:
            last = now
            where = f"step {step}" if step else "preparing"
            print(f"  ... {where}, {now - started:.0f} s so far", file=out, flush=True)
    print(f"  ... ended after {clock() - started:.0f} s", file=out, flush=True)


def main() -> None:
    with Path(sys.argv[1]).open("w") as log:
        follow(sys.stdin, log, sys.stdout)


if __name__ == "__main__":
    main()

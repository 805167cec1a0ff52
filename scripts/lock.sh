#!/usr/bin/env bash
# Write constraints.txt: the exact version of every third-party package in .venv (set up
# with the test profile, so the runtime's and the test tools' alike), for scripts/setup.sh
# to install from (`pip install -c`). Run it (`make lock`) after changing a dependency and
# seeing the tests pass; commit the file with the change.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test
{
  echo "# What make up and make test install, by make lock from a tested .venv"
  echo "# (Python $(.venv/bin/python -c 'import platform; print(platform.python_version())')," \
    "$(uname -m)). The project's own packages are not pinned: they install editable."
  .venv/bin/python -m pip freeze --exclude-editable | LC_ALL=C sort -f
} >constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages pinned"

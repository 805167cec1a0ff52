#!/usr/bin/env bash
# Run every test: the CPU stack in .venv, then each torch backend in its own venv.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
.venv/bin/python -m pytest "$@" || status=$?
for suite in services/*/test.sh; do
  [[ -x $suite ]] || continue
  echo "== $suite"
  "$suite" "$@" || status=$?
done
exit "$status"

#!/usr/bin/env bash
# Run every test (`make test`): first what the suite needs on this machine (the system
# packages, the container engine), then the CPU stack in .venv, then each torch backend in
# its own venv. AISTACK_CONTAINER_TESTS=0 leaves the container smoke tests out.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/system-packages.sh test
scripts/setup.sh test || exit
if [[ ${AISTACK_CONTAINER_TESTS:-1} != 0 ]]; then
  echo "setting up the container engine for the smoke tests (podman; a minute the first time)"
  if engine=$(scripts/podman-setup.sh); then
    eval "$engine"
    export AISTACK_CONTAINER_TESTS=1
  else
    echo "missing: a container engine (scripts/podman-setup.sh failed, above):" \
      "the container smoke tests will skip" >&2
  fi
fi

status=0
.venv/bin/python -m pytest "$@" || status=$?
for suite in services/*/test.sh; do
  [[ -x $suite ]] || continue
  echo "== $suite"
  "$suite" "$@" || status=$?
done
exit "$status"

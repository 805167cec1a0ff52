#!/usr/bin/env bash
# Run every test (`make test`): first what the suite needs on this machine (the system
# packages, the container engine), then the CPU stack in .venv, then each torch backend in
# its own venv. AISTACK_CONTAINER_TESTS=0 leaves the container smoke tests out.
# AISTACK_TESTS narrows the run after the same setup: pytest gets its words, split at
# spaces (no quoting), instead of every test, and the torch backends' suites are left out:
#   AISTACK_TESTS='tests/test_health.py tests/test_speech.py' make test
# Under CI (the CI variable set, not 0 or false; .ci/run sets it) nothing may be left out:
# a missing system package or container engine fails the run, and so does a test that
# skips for a reason off the allow-list (aistack_testing.plugin, docs/deploy.md).
set -uo pipefail
cd "$(dirname "$0")/.."

case ${CI:-} in "" | 0 | false | no) ci="" ;; *) ci=1 ;; esac
scripts/system-packages.sh test || exit
scripts/setup.sh test || exit
if [[ ${AISTACK_CONTAINER_TESTS:-1} != 0 ]]; then
  echo "setting up the container engine for the smoke tests (podman; a minute the first time)"
  if engine=$(scripts/podman-setup.sh); then
    eval "$engine"
    export AISTACK_CONTAINER_TESTS=1
  else
    echo "missing: a container engine (scripts/podman-setup.sh failed, above):" \
      "the container smoke tests will skip" >&2
    [[ -z $ci ]] || { echo "CI is set: no container engine fails the run" >&2 && exit 1; }
  fi
fi

status=0
if [[ -n ${AISTACK_TESTS:-} ]]; then
  read -ra selection <<<"$AISTACK_TESTS"
  echo "AISTACK_TESTS: only pytest ${selection[*]}, without the torch backends' suites"
  .venv/bin/python -m pytest "${selection[@]}" "$@"
  exit
fi
.venv/bin/python -m pytest "$@" || status=$?
for suite in services/*/test.sh; do
  [[ -x $suite ]] || continue
  echo "== $suite"
  "$suite" "$@" || status=$?
done
exit "$status"

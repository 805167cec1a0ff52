#!/usr/bin/env bash
# Write constraints.txt: the exact version of every third-party package in .venv (set up
# with the test profile, so the runtime's and the test tools' alike), for scripts/setup.sh
# to install from (`pip install -c`). Then each torch backend's lock,
# services/<name>/constraints.txt, from its own venv (.venv-<name>, made by its test.sh),
# for scripts/torch-backend-test.sh and the backend's image. Run it (`make lock`) after
# changing a dependency and seeing the tests pass; commit the files with the change.
set -euo pipefail
cd "$(dirname "$0")/.."

# `python -m pip freeze` of a venv, without the project's own (editable) packages, sorted.
# A local version label goes (torch's `+cpu`): the tests use torch's CPU build, an image
# the CUDA one of the same version, and `torch==2.13.0` admits both.
frozen() {
  "$1" -m pip freeze --exclude-editable | sed 's/+[[:alnum:].]*$//' | LC_ALL=C sort -f
}
version() { "$1" -c 'import platform; print(platform.python_version())'; }

scripts/setup.sh test
{
  echo "# What make up and make test install, by make lock from a tested .venv"
  echo "# (Python $(version .venv/bin/python), $(uname -m))." \
    "The project's own packages are not pinned: they install editable."
  frozen .venv/bin/python
} >constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages pinned"

for test in services/*/test.sh; do
  service=$(basename "$(dirname "$test")")
  python=.venv-${service#asr-}/bin/python
  lock=services/$service/constraints.txt
  if [[ ! -x $python ]]; then
    echo "$lock: kept ($test has not made ${python%/bin/python} here)"
    continue
  fi
  {
    echo "# What $service's venv and image install, by make lock from its tested venv"
    echo "# (Python $(version "$python"), $(uname -m)). torch's build comes from the index"
    echo "# (CPU for the tests, CUDA in the image); the project's own packages are not pinned."
    frozen "$python"
  } >"$lock.new"
  mv "$lock.new" "$lock"
  echo "$lock: $(grep -vc '^#' "$lock") packages pinned"
done

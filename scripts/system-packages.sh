#!/usr/bin/env bash
# Install the Debian/Ubuntu packages that `make up` (runtime) or `make test` (test) needs,
# with apt-get, through sudo when not root. Quick when everything is there: each piece is
# looked for before apt-get is asked. Where a piece cannot be installed (no apt-get, no
# root and no sudo, no such package), one line says so and the run goes on: `make up`
# without it fails where it is used, the tests that need it skip with the same reason.
# Under CI (the CI variable set, not 0 or false) a missing piece fails instead: exit 1.
#   scripts/system-packages.sh runtime|test
set -uo pipefail
cd "$(dirname "$0")/.."

profile=${1:?usage: $0 runtime|test}
PYTHON=${PYTHON:-python3}
# What a piece is, as "how to look for it|Debian package|what it is for".
runtime=(
  "$PYTHON -c 'import ensurepip'|python3-venv|creating .venv"
  "$PYTHON -c 'import ctypes.util as u; assert u.find_library(\"gomp\")'|libgomp1|llama.cpp's threads (OpenMP) in the embedded LLM"
)
# llama-cpp-python compiles llama.cpp unless its wheel is already built.
if ! compgen -G "services/llm-llamacpp/wheels/llama_cpp_python-*.whl" >/dev/null; then
  runtime+=("command -v g++|build-essential|compiling llama.cpp for the embedded LLM")
fi
tests=(
  "command -v redis-server|redis-server|the tests with a real Redis"
  "PATH=\$PATH:/usr/sbin command -v nginx|nginx|the reverse proxy's tests"
  "command -v openssl|openssl|the reverse proxy's tests"
  "command -v chromium|chromium|the admin page's browser tests"
  "command -v espeak-ng|espeak-ng|speech in German and Spanish for translation and detection"
)
case $profile in
  runtime) wanted=("${runtime[@]}") ;;
  test) wanted=("${runtime[@]}" "${tests[@]}") ;;
  *) echo "usage: $0 runtime|test" >&2 && exit 2 ;;
esac

absent() {
  local piece
  for piece in "${wanted[@]}"; do
    bash -c "${piece%%|*}" >/dev/null 2>&1 || echo "$piece"
  done
}

mapfile -t missing < <(absent)
((${#missing[@]})) || exit 0

why=""
sudo=""
if ! command -v apt-get >/dev/null; then
  why="this is not a Debian or Ubuntu machine (no apt-get)"
elif [[ $(id -u) != 0 ]]; then
  if command -v sudo >/dev/null && { sudo -n true 2>/dev/null || [[ -t 0 ]]; }; then
    sudo=sudo
  else
    why="not root, and no sudo to run apt-get with"
  fi
fi
if [[ -z $why ]]; then
  packages=()
  for piece in "${missing[@]}"; do
    rest=${piece#*|}
    packages+=("${rest%%|*}")
  done
  echo "installing system packages: ${packages[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2 || true
  $sudo apt-get install -y -qq "${packages[@]}" >/dev/null \
    || why="apt-get install failed"
  mapfile -t missing < <(absent)
fi
for piece in "${missing[@]}"; do
  rest=${piece#*|}
  echo "missing: ${rest%%|*}, for ${rest#*|} (${why:-installed, but not found}):" \
    "apt-get install ${rest%%|*}" >&2
done
case ${CI:-} in
  "" | 0 | false | no) exit 0 ;;
  *) ((${#missing[@]} == 0)) || {
    echo "CI is set: a missing system package fails the run (above)" >&2
    exit 1
  } ;;
esac

#!/usr/bin/env bash
# One torch backend's tests in a virtualenv of its own, `.venv-<name>` at the repository
# root: torch's CPU build first, so that the backend's frameworks do not pull another
# build of it, then those frameworks (again only when the backend's lock changes), then
# the repository's packages, editable (again only when a pyproject.toml, the lock or these
# scripts change). Every install is held to the backend's lock, services/<name>/constraints.txt
# (`make lock` writes it from this venv), and the venv is checked against it before the tests:
# a package the lock does not name, or at another version, fails the run.
# Usage: scripts/torch-backend-test.sh SERVICE PYTHON "FRAMEWORK..." [pytest arguments]
set -euo pipefail
service=$1 interpreter=$2 frameworks=$3
shift 3
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-${service#asr-}"
python="$venv/bin/python"
lock="services/$service/constraints.txt"
cd "$root"
frameworks_stamp="$( (cat "$lock" && echo "$frameworks") | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$venv/.frameworks-installed" 2>/dev/null)" != "$frameworks_stamp" ]]; then
    [[ -x $python ]] || "$interpreter" -m venv "$venv"
    "$python" -m pip install --quiet -c "$lock" torch==2.13.0
    read -ra wanted <<<"$frameworks"
    "$python" -m pip install --quiet -c "$lock" "${wanted[@]}"
    echo "$frameworks_stamp" > "$venv/.frameworks-installed"
fi
packages=(libs/contract libs/service libs/testing libs/asr-service edge "services/$service")
stamp="$(cat "${packages[@]/%//pyproject.toml}" "$0" "services/$service/test.sh" "$lock" \
    | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$venv/.packages-installed" 2>/dev/null)" != "$stamp" ]]; then
    "$python" -m pip install --quiet -c "$lock" -e libs/contract -e libs/service \
        -e "libs/testing[speech]" -e libs/asr-service -e edge -e "services/$service" openai
    echo "$stamp" > "$venv/.packages-installed"
fi
"$python" scripts/lockcheck.py "$lock"
exec "$python" -m pytest "services/$service/tests" "$@"

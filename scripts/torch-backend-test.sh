#!/usr/bin/env bash
# One torch backend's tests in a virtualenv of its own, `.venv-<name>` at the repository
# root: torch's CPU build first, so that the backend's frameworks do not pull another
# build of it, then those frameworks (once), then the repository's packages, editable
# (again only when a pyproject.toml or these scripts change).
# Usage: scripts/torch-backend-test.sh SERVICE PYTHON "FRAMEWORK..." [pytest arguments]
set -euo pipefail
service=$1 interpreter=$2 frameworks=$3
shift 3
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-${service#asr-}"
python="$venv/bin/python"
cd "$root"
if [[ ! -f "$venv/.frameworks-installed" ]]; then
    "$interpreter" -m venv "$venv"
    "$python" -m pip install --quiet torch==2.13.0
    read -ra wanted <<<"$frameworks"
    "$python" -m pip install --quiet "${wanted[@]}"
    touch "$venv/.frameworks-installed"
fi
packages=(libs/contract libs/service libs/testing libs/asr-service edge "services/$service")
stamp="$(cat "${packages[@]/%//pyproject.toml}" "$0" "services/$service/test.sh" \
    | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$venv/.packages-installed" 2>/dev/null)" != "$stamp" ]]; then
    "$python" -m pip install --quiet -e libs/contract -e libs/service -e "libs/testing[speech]" \
        -e libs/asr-service -e edge -e "services/$service" openai
    echo "$stamp" > "$venv/.packages-installed"
fi
exec "$python" -m pytest "services/$service/tests" "$@"

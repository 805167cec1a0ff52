#!/usr/bin/env bash
# asr-sensevoice's tests in their own virtualenv (.venv-sensevoice at the repository root).
# Usage: services/asr-sensevoice/test.sh [pytest arguments]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-sensevoice"
python="$venv/bin/python"
cd "$root"
if [[ ! -f "$venv/.frameworks-installed" ]]; then
    python3 -m venv "$venv"
    # torch first (its CPU build here), so that FunASR does not pull another build of it
    "$python" -m pip install --quiet torch==2.13.0
    "$python" -m pip install --quiet funasr==1.4.16 kaldi-native-fbank==1.23.0 sentencepiece==0.2.3
    touch "$venv/.frameworks-installed"
fi
# The repository's own packages, editable: reinstalled only when a pyproject.toml or this changes.
packages=(libs/contract libs/testing libs/asr-service edge services/asr-sensevoice)
stamp="$(cat "${packages[@]/%//pyproject.toml}" "$here/test.sh" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$venv/.packages-installed" 2>/dev/null)" != "$stamp" ]]; then
    "$python" -m pip install --quiet \
        -e libs/contract -e "libs/testing[speech]" -e libs/asr-service -e edge \
        -e services/asr-sensevoice openai
    echo "$stamp" > "$venv/.packages-installed"
fi
exec "$python" -m pytest services/asr-sensevoice/tests "$@"

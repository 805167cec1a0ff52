#!/usr/bin/env bash
# asr-sensevoice's tests in their own virtualenv (.venv-sensevoice at the repo root).
# Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=.venv-sensevoice
if [[ ! -x $venv/bin/python ]] || ! $venv/bin/python -c "import torch, funasr" 2>/dev/null; then
  python3 -m venv "$venv"
  # torch first, its CPU build, so that nothing pulls another one in
  "$venv/bin/pip" install -q torch==2.13.0
  "$venv/bin/pip" install -q funasr kaldi-native-fbank sentencepiece openai
fi
projects=(libs/contract libs/testing libs/asr-service services/asr-sensevoice)
[[ -f edge/pyproject.toml ]] && projects+=(edge)
# (re)install the repo's packages whenever one of their pyproject.toml files changed
stamp=$(cat "${projects[@]/%//pyproject.toml}" | sha256sum | cut -d' ' -f1)
if [[ $(cat "$venv/.aistack-stamp" 2>/dev/null) != "$stamp" ]]; then
  editables=()
  for project in "${projects[@]}"; do
    [[ $project == libs/testing ]] && project="libs/testing[speech]"
    editables+=(-e "$project")
  done
  "$venv/bin/pip" install -q "${editables[@]}"
  echo "$stamp" >"$venv/.aistack-stamp"
fi
exec "$venv/bin/python" -m pytest services/asr-sensevoice/tests "$@"

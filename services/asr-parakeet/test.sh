#!/usr/bin/env bash
# asr-parakeet's tests in their own virtualenv (.venv-parakeet at the repository root):
# torch, then NeMo. Usage: services/asr-parakeet/test.sh [pytest arguments]
exec "$(dirname "$0")/../../scripts/torch-backend-test.sh" asr-parakeet python3.11 \
    "nemo_toolkit[asr]==3.0.0" "$@"

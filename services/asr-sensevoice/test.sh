#!/usr/bin/env bash
# asr-sensevoice's tests in their own virtualenv (.venv-sensevoice at the repository root):
# torch, then FunASR. Usage: services/asr-sensevoice/test.sh [pytest arguments]
exec "$(dirname "$0")/../../scripts/torch-backend-test.sh" asr-sensevoice python3 \
    "funasr==1.4.16 kaldi-native-fbank==1.23.0 sentencepiece==0.2.3" "$@"

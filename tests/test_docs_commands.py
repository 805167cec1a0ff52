"""The shell commands the docs show hold: every fenced block marked ```sh runnable runs
(bash, errexit and pipefail, from the repository root, .venv's bin first on PATH) and
exits 0; and every `pip install -e` line names each local package its packages need,
so that it installs on a machine that has none of them. (On this checkout, not on a
fresh clone: the blocks marked runnable are quick and leave nothing behind, and the
fresh clone's own test runs `make test`, the README's command.)"""

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNNABLE = re.compile(r"^```sh runnable\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return [
        (f"{doc.relative_to(ROOT)}#{n}", block)
        for doc in DOCS
        for n, block in enumerate(RUNNABLE.findall(doc.read_text()), start=1)
    ]


def test_some_blocks_are_marked_runnable():
    assert len(blocks()) >= 2


@pytest.mark.parametrize(("where", "block"), blocks(), ids=[w for w, _ in blocks()])
def test_a_runnable_block_runs(where, block):
    path = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{where}:\n{block}\n{run.stdout[-3000:]}{run.stderr[-3000:]}"


def local_packages() -> dict[str, tuple[str, set[str]]]:
    """Each local package's name -> (its folder, the local packages it depends on)."""
    found = {}
    for pyproject in ROOT.glob("*/**/pyproject.toml"):
        folder = pyproject.parent.relative_to(ROOT).as_posix()
        if folder.startswith(".") or "/tests" in folder:
            continue
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        needs = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0] for d in project.get("dependencies", [])}
        found[project["name"]] = (folder, {n for n in needs if n.startswith("aistack-")})
    return found


def pip_lines() -> list[tuple[str, list[str]]]:
    lines = []
    for doc in DOCS:
        for line in doc.read_text().splitlines():
            if "pip install" in line and " -e " in line:
                words = shlex.split(line.split("#")[0])
                editable = [words[i + 1] for i, w in enumerate(words) if w == "-e"]
                lines.append((f"{doc.relative_to(ROOT)}: {line.strip()}", editable))
    return lines


def test_pip_lines_name_every_local_package_they_need():
    packages = local_packages()
    folder_of = {folder: name for name, (folder, _) in packages.items()}
    assert pip_lines()
    for where, editable in pip_lines():
        named = {folder_of[re.sub(r"\[.*\]$", "", e).rstrip("/")] for e in editable}
        needed = set().union(*(packages[name][1] for name in named))
        assert needed <= named, f"{where} leaves out {sorted(needed - named)}"

"""Setting a machine up: scripts/system-packages.sh names each piece it cannot install in one
line, the pytest run counts its skips by reason, and the long llama.cpp build shows progress
(scripts/progress.py)."""

import io
import itertools
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]


def test_system_packages_names_each_missing_piece_when_it_cannot_install(tmp_path):
    """No apt-get (another OS): one line per missing package, what it is for, and no failure."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "id", "python3"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    run = subprocess.run(
        ["bash", ROOT / "scripts" / "system-packages.sh", "test"],
        env={"PATH": str(bin_dir), "PYTHON": "python3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    reason = "this is not a Debian or Ubuntu machine (no apt-get)"
    for package in ("redis-server", "openssl", "chromium"):
        line = next(line for line in lines if line.startswith(f"missing: {package},"))
        assert reason in line
        assert line.endswith(f"apt-get install {package}")


def test_system_packages_is_silent_and_quick_when_everything_is_there():
    run = subprocess.run(
        [ROOT / "scripts" / "system-packages.sh", "runtime"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_the_summary_counts_skips_by_reason(pytester, monkeypatch):
    monkeypatch.delenv("AISTACK_CONTAINER_TESTS", raising=False)
    monkeypatch.delenv("CI", raising=False)  # under CI, the skip fails (test_ci_guard.py)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_needs_a_tool(n):
            pytest.skip("frobnicate is not installed (apt-get install frobnicate)")

        def test_runs():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "missing: no container engine*the container smoke tests will skip",
            "*skipped, by reason*",
            "    2  frobnicate is not installed (apt-get install frobnicate)",
        ]
    )


def test_progress_prints_a_line_per_period_with_the_build_step(script):
    lines = ["Building wheel\n", "[1/300] Building CXX ggml.o\n", "noise\n", "[150/300] x\n"]
    lines += ["[ 99%] Linking\n", "done\n"]
    ticks = itertools.count(0, 10)  # each line read is 10 s later
    log, out = io.StringIO(), io.StringIO()
    script("progress").follow(iter(lines), log, out, period_s=20, clock=lambda: next(ticks))
    assert log.getvalue() == "".join(lines)
    assert out.getvalue().splitlines() == [
        "  ... step 1/300, 20 s so far",
        "  ... step 150/300, 40 s so far",
        "  ... step 99%, 60 s so far",
        "  ... ended after 70 s",
    ]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pairs}


def test_the_lock_is_what_is_installed():
    """.venv was installed from constraints.txt: every pin is the installed version."""
    wrong = {
        name: (version, installed)
        for name, version in pins().items()
        if (installed := metadata.version(name)) != version
    }
    assert not wrong, "run make setup-test (or make lock after changing a dependency)"


def test_every_dependency_of_the_project_is_pinned():
    """Of the project's packages that .venv holds (the torch backends have venvs of their own)."""
    pinned, own, wanted = pins(), set(), set()
    for pyproject in [*ROOT.glob("*/pyproject.toml"), *ROOT.glob("*/*/pyproject.toml")]:
        project = tomllib.loads(pyproject.read_text())["project"]
        try:
            metadata.version(project["name"])
        except metadata.PackageNotFoundError:
            continue
        own.add(canonicalize_name(project["name"]))
        extras = project.get("optional-dependencies", {}).values()
        for spec in itertools.chain(project.get("dependencies", []), *extras):
            wanted.add(canonicalize_name(Requirement(spec).name))
    assert wanted - own - set(pinned) == set(), "make lock pins them"

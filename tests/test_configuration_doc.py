"""docs/configuration.md against the settings classes: every variable, its default, no extra.

Each `##` section of the page whose heading names a settings module in backticks documents
that module's settings class. The modules are loaded from their files, so the backends
whose own dependencies (torch, NeMo, FunASR) are not installed here are checked too: a
settings module imports only pydantic and the shared ASR settings.
"""

import ast
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from aistack_asr.settings import AsrSettings
from aistack_service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"
SOURCES = ("edge", "libs", "services")
SHELLS: dict[str, type[BaseSettings]] = {
    "libs/service/aistack_service/settings.py": ServiceSettings,
    "libs/asr-service/aistack_asr/settings.py": AsrSettings,
}
"""The settings every backend reads, then every ASR backend: base first."""
# A value no setting takes as it is: it either changes the setting or fails validation,
# which shows that the variable is read.
JUNK = "\x01-not-a-value-{"


def sections() -> dict[str, list[tuple[str, str]]]:
    """Module path named in a `##` heading -> that section's (variable, default) rows."""
    found: dict[str, list[tuple[str, str]]] = {}
    rows: list[tuple[str, str]] | None = None
    for line in PAGE.read_text().splitlines():
        if line.startswith("## "):
            named = re.search(r"`([\w/.-]+\.py)`", line)
            rows = found.setdefault(named.group(1), []) if named else None
        elif rows is not None and (row := re.match(r"\| `([A-Z0-9_]+)` \| ([^|]*) \|", line)):
            rows.append((row.group(1), row.group(2).strip()))
    return found


def load(path: str) -> ModuleType:
    """The module at `path`, loaded from its file under a name of its own."""
    name = "configuration_doc_" + re.sub(r"\W", "_", path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # pydantic resolves a class's annotations in its module's namespace, found by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def settings_class(path: str) -> type[BaseSettings]:
    """The one settings class the module at `path` defines."""
    module = load(path)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value.__module__ == module.__name__
    ]
    assert len(found) == 1, f"{path}: one settings class expected, found {found}"
    return found[0]


def variables(cls: type[BaseSettings]) -> dict[str, tuple[str, Any]]:
    """Each environment variable `cls` reads -> (its field, the field's default)."""
    prefix = cls.model_config.get("env_prefix", "")
    read: dict[str, tuple[str, Any]] = {}
    for field, info in cls.model_fields.items():
        alias = info.validation_alias or info.alias
        if isinstance(alias, AliasChoices):
            names = [choice for choice in alias.choices if isinstance(choice, str)]
        elif isinstance(alias, str):
            names = [alias]
        else:
            names = [prefix + field]
        for name in names:
            read[name.upper()] = (field, info.get_default(call_default_factory=True))
    return read


def expected() -> dict[str, dict[str, tuple[str, Any]]]:
    """Module path -> the variables its section must document.

    A shell's section (every backend's, then every ASR backend's) holds what the services
    standing on it read alike; a service's section holds the rest of what it reads (its
    host and port, its engine's settings).
    """
    classes = {path: settings_class(path) for path in sections()}
    own = {path: variables(cls) for path, cls in classes.items()}
    result = {}
    for path, cls in classes.items():
        read = own[path]
        for shell_path, shell in SHELLS.items():
            users = [own[p] for p, c in classes.items() if p != shell_path and issubclass(c, shell)]
            shared = {
                name: value
                for name, value in variables(shell).items()
                if all(use.get(name) == value for use in users)
            }
            if path == shell_path:
                read = {name: value for name, value in read.items() if name in shared}
            elif issubclass(cls, shell):
                read = {name: value for name, value in read.items() if shared.get(name) != value}
        result[path] = read
    return result


def base_name(base: ast.expr) -> str:
    """`Settings` of `class X(Settings)` and of `class X(module.Settings)`."""
    return base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")


def settings_modules() -> Iterator[str]:
    """Every module outside the tests that defines a settings class."""
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "tests" in relative.parts or any(part.startswith(".") for part in relative.parts):
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                    base_name(base).endswith("Settings") for base in node.bases
                ):
                    yield relative.as_posix()
                    break


@mock.patch.dict(os.environ, clear=True)
def fields_with(cls: type[BaseSettings], env: dict[str, str]) -> dict[str, Any] | None:
    """The fields of `cls` with only `env` in the environment; None if it is refused."""
    os.environ.update(env)
    try:
        return cls().model_dump()
    except (ValidationError, SettingsError):
        return None


def test_every_settings_module_has_a_section():
    assert sorted(settings_modules()) == sorted(sections())


@pytest.mark.parametrize("path", sorted(sections()))
def test_section_documents_exactly_what_is_read(path: str):
    documented = [name for name, _ in sections()[path]]
    assert len(documented) == len(set(documented)), f"{path}: a variable twice"
    read = expected()[path]
    assert sorted(documented) == sorted(read), (
        f"{path}: missing {sorted(set(read) - set(documented))}, "
        f"read by nothing {sorted(set(documented) - set(read))}"
    )


def defaults_of(path: str) -> dict[str, Any]:
    """The settings class's fields with no variable set."""
    defaults = fields_with(settings_class(path), {})
    assert defaults is not None
    return defaults


def documented(path: str) -> list[tuple[str, str, str]]:
    """(variable, documented default, field) of each documented variable the class reads
    (test_section_documents_exactly_what_is_read reports the others)."""
    read = variables(settings_class(path))
    return [(name, default, read[name][0]) for name, default in sections()[path] if name in read]


@pytest.mark.parametrize("path", sorted(sections()))
def test_documented_defaults_are_the_defaults(path: str):
    """A default is `value` (given as the variable, it is the default), unset or empty."""
    cls, defaults = settings_class(path), defaults_of(path)
    for name, default, field in documented(path):
        if default.startswith("unset"):
            assert defaults[field] is None, f"{name}: documented unset, is {defaults[field]!r}"
            continue
        quoted = re.match(r"`([^`]*)`", default)
        assert quoted or default.startswith("empty"), f"{name}: default {default!r}"
        text = quoted.group(1) if quoted else ""
        fields = fields_with(cls, {name: text})
        assert fields is not None, f"{name}: the documented default {text!r} is refused"
        assert fields[field] == defaults[field], (
            f"{name}: documented {text!r}, the default is {defaults[field]!r}"
        )


@pytest.mark.parametrize("path", sorted(sections()))
def test_documented_variables_are_read(path: str):
    """Setting each documented variable to junk changes its field or is refused."""
    cls, defaults = settings_class(path), defaults_of(path)
    for name, _, field in documented(path):
        fields = fields_with(cls, {name: JUNK})
        assert fields is None or fields[field] != defaults[field], f"{name} is not read"

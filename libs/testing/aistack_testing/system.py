"""The programs outside Python that some tests need, found or named as missing.

`make test` installs them (scripts/system-packages.sh); where it could not, the tests that
need one skip with the reason given here, and the run says up front what is missing.
"""

import shutil
from dataclasses import dataclass

import pytest

# Daemons such as nginx live in sbin, which a non-root PATH often lacks.
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class Tool:
    command: str
    package: str  # the Debian package that ships it
    used_by: str  # which tests skip without it


TOOLS = {
    tool.command: tool
    for tool in (
        Tool("redis-server", "redis-server", "the tests with a real Redis (most of tests/)"),
        Tool("nginx", "nginx", "the reverse proxy's tests (tests/deploy/test_proxy.py)"),
        Tool("openssl", "openssl", "the reverse proxy's tests (tests/deploy/test_proxy.py)"),
        Tool("chromium", "chromium", "the admin page's browser tests (tests/test_admin_page.py)"),
    )
}


def which(command: str) -> str | None:
    return shutil.which(command) or shutil.which(command, path=_SBIN)


def reason(command: str) -> str:
    tool = TOOLS[command]
    return f"{command} is not installed (apt-get install {tool.package})"


def require(command: str) -> str:
    """The path of `command`, or a skip of the calling test that names its package."""
    path = which(command)
    if path is None:
        pytest.skip(reason(command))
    return path


def missing() -> list[str]:
    """One line per missing tool: what it is, how to get it, which tests skip without it."""
    return [
        f"{reason(tool.command)}: {tool.used_by} will skip"
        for tool in TOOLS.values()
        if which(tool.command) is None
    ]

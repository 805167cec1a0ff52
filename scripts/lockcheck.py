"""Whether the Python running this holds exactly what a lock pins: every third-party
package installed is pinned there, at the version installed. `pip install -c LOCK` keeps
the pinned ones at their pins, but a package the lock does not name (a new dependency of
a dependency) would install at whatever version is newest: this finds it.

Usage: python scripts/lockcheck.py LOCK   (exit 1 and one line per difference)

Standard library only: it runs in every venv, a torch backend's included. The project's
own packages (editable installs) are not pinned, and a local version label (torch's
`+cpu`) is the build, not the version."""

import json
import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.!]+)")
"""One line of a lock: `name==version`, a public version (no `+local`, no URL)."""


def canonical(name: str) -> str:
    """A distribution's name as the index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, str]:
    """The lock's pins by canonical name; ValueError for a line that is not one."""
    found: dict[str, str] = {}
    for number, line in enumerate(lock.read_text().splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = PIN.fullmatch(line)
        if match is None:
            raise ValueError(f"{lock}:{number}: not `name==version`: {line[:80]}")
        name = canonical(match[1])
        if name in found:
            raise ValueError(f"{lock}:{number}: {match[1]} pinned twice")
        found[name] = match[2]
    return found


def installed() -> dict[str, str]:
    """Third-party distributions of this Python by canonical name, local labels dropped;
    editable installs (the project's own) left out, as `pip freeze --exclude-editable` does."""
    found = {}
    for dist in metadata.distributions():
        url = dist.read_text("direct_url.json")
        if url and json.loads(url).get("dir_info", {}).get("editable"):
            continue
        found[canonical(dist.metadata["Name"])] = dist.version.split("+")[0]
    # pip leaves these out of a freeze (and the lock): they install the rest.
    for tool in ("pip", "setuptools", "wheel", "distribute"):
        found.pop(tool, None)
    return found


def differences(lock: Path) -> list[str]:
    """What this Python holds that `lock` does not pin, or pins at another version."""
    pinned = pins(lock)
    wrong = []
    for name, version in sorted(installed().items()):
        if name not in pinned:
            wrong.append(f"{name}=={version} is installed but not in {lock}")
        elif pinned[name] != version:
            wrong.append(f"{name}=={version} is installed; {lock} pins {pinned[name]}")
    return wrong


def main() -> int:
    lock = Path(sys.argv[1])
    wrong = differences(lock)
    for line in wrong:
        print(line, file=sys.stderr)
    if wrong:
        print(f"run `make lock` after the tests pass, and commit {lock}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

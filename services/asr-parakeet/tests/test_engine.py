"""The NeMo side in-process: loading a `.nemo` file, word times, the attention modes."""

import itertools
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aistack_asr.service import AsrService
from aistack_asr.settings import AsrSettings
from aistack_asr.stoppable import Stopped
from aistack_asr_parakeet.backend import ParakeetBackend
from aistack_asr_parakeet.engine import ParakeetModel
from aistack_asr_parakeet.models import MODEL_ID, find_model
from aistack_asr_parakeet.settings import ParakeetSettings
from aistack_contract.errors import AistackError, ErrorKind
from aistack_service.memory import out_of_memory


@pytest.fixture(scope="module")
def model(tiny_nemo: Path) -> ParakeetModel:
    settings = ParakeetSettings(
        parakeet_local_attention_after_sec=2.0,
        parakeet_local_attention_context=(8, 8),
        parakeet_cpu_threads=1,
    )
    return ParakeetModel.load(tiny_nemo, settings)


def noise(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 0.1, round(seconds * 16_000)).astype(np.float32)


@pytest.mark.parametrize("seconds", [0.3, 1.0, 1.7])
def test_word_times_lie_within_the_audio(model: ParakeetModel, seconds: float) -> None:
    words = model.transcribe(noise(seconds))
    assert words
    assert all(0 <= w.start <= w.end <= seconds for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))


def test_long_windows_use_local_attention_and_short_ones_full(model: ParakeetModel) -> None:
    encoder = model.model.cfg.encoder
    model.transcribe(noise(3.0))
    assert (encoder.self_attention_model, list(encoder.att_context_size)) == (
        "rel_pos_local_attn",
        [8, 8],
    )
    model.transcribe(noise(1.0))
    assert (encoder.self_attention_model, list(encoder.att_context_size)) == ("rel_pos", [-1, -1])


def test_a_broken_model_file_fails_to_load_as_unknown(tmp_path: Path) -> None:
    broken = tmp_path / "broken.nemo"
    broken.write_bytes(os.urandom(4096))
    backend = ParakeetBackend(ParakeetSettings(parakeet_model_path=broken))
    assert [card.id for card in backend.cards()] == [MODEL_ID]  # present, so listed
    service = AsrService(backend, AsrSettings())  # loading as the service does
    with pytest.raises(AistackError) as caught, service.cache.use(MODEL_ID):
        pass
    assert caught.value.body.kind == ErrorKind.UNKNOWN
    assert caught.value.body.provider == "Parakeet"
    assert caught.value.body.message.startswith(f"loading {MODEL_ID} failed: ")


def test_the_model_file_is_found_in_a_directory_or_hub_cache(tmp_path: Path) -> None:
    assert find_model(None) is None
    assert find_model(tmp_path / "absent.nemo") is None
    assert find_model(tmp_path) is None
    snapshot = tmp_path / "models--nvidia--parakeet-tdt-0.6b-v3" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "parakeet-tdt-0.6b-v3.nemo").write_bytes(b"x")
    assert find_model(tmp_path) == snapshot / "parakeet-tdt-0.6b-v3.nemo"
    assert (
        find_model(snapshot / "parakeet-tdt-0.6b-v3.nemo") == snapshot / "parakeet-tdt-0.6b-v3.nemo"
    )


def test_a_cancelled_window_stops_between_two_steps(model: ParakeetModel) -> None:
    """One long window is one call into NeMo: a cancel set while it runs stops it within
    a step of the model, not at the window's end."""
    audio = noise(120.0)
    began = time.perf_counter()
    model.transcribe(audio)
    whole_s = time.perf_counter() - began
    cancel = threading.Event()
    threading.Timer(whole_s / 10, cancel.set).start()
    began = time.perf_counter()
    with pytest.raises(Stopped):
        model.transcribe(audio, cancel)
    stopped_s = time.perf_counter() - began
    assert stopped_s < whole_s / 10 + min(0.5, whole_s / 4), (stopped_s, whole_s)
    assert model.transcribe(noise(1.0))  # no hook left behind: the model works as before


def test_torch_running_out_of_memory_is_known_to_the_shell() -> None:
    """The shell knows torch's error by its name (it does not import torch): the real one."""
    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert not out_of_memory(RuntimeError("shape mismatch"))

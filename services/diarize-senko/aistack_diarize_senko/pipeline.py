"""senko's pipeline, run a window at a time: voice activity, then speaker embeddings of
1.5 s sub-segments a window of them at a time (the features of one window held, never
the recording's; a cancel seen between windows and, on CPU, between the embedding
model's steps), then clustering.

The steps are senko 0.2.2's own (`Diarizer.diarize_samples` runs the same ones on the
whole recording at once, and its streaming mode calls the same methods with a sample
offset); the version is pinned, so their names cannot move under us.
"""

import threading
from typing import Any

import numpy as np

from aistack_asr.stoppable import Stopped, stoppable
from aistack_contract.diarization import SpeakerTurn

RATE = 16_000
Subsegment = tuple[float, float]


def _cancellable(diarizer: Any, cancel: threading.Event) -> Any:
    """Stops the embedding model between its steps where it is a plain torch module (on
    CPU); CUDA's is a TorchScript module, stopped between windows only."""
    import contextlib

    import torch

    model = diarizer.embeddings_model
    if isinstance(model, torch.jit.ScriptModule):
        return contextlib.nullcontext()
    return stoppable(model, cancel)


def embeddings(
    diarizer: Any, samples: np.ndarray, window: int, cancel: threading.Event
) -> tuple[list[Subsegment], np.ndarray] | None:
    """The speech's sub-segments and one embedding each; None once cancelled."""
    diarizer._timing_stats = {}  # what senko's step timers write to
    vad = diarizer._perform_vad(samples)
    if cancel.is_set():
        return None
    subsegments: list[Subsegment] = diarizer._generate_subsegments(vad, None)
    parts = []
    try:
        with _cancellable(diarizer, cancel):
            for first in range(0, len(subsegments), window):
                if cancel.is_set():
                    return None
                chunk = subsegments[first : first + window]
                lo = max(0, int(chunk[0][0] * RATE))
                hi = min(len(samples), int(chunk[-1][1] * RATE) + 1)
                feats, frames, offsets, dim = diarizer._extract_fbank_features(
                    samples[lo:hi], chunk, sample_offset=lo
                )
                offsets = [int(offset) for offset in offsets]
                parts.append(diarizer._generate_embeddings(feats, frames, offsets, dim))
    except Stopped:
        return None
    if not parts:
        return subsegments, np.zeros((0, 192), dtype=np.float32)
    return subsegments, np.concatenate(parts)


def turns(
    diarizer: Any, subsegments: list[Subsegment], vectors: np.ndarray
) -> tuple[list[SpeakerTurn], dict[str, list[float]]]:
    """Speaker turns (senko's merged segments: a speaker's pauses of up to 4 s bridged,
    blips of under 0.8 s dropped) and each speaker's mean embedding."""
    if not subsegments:
        return [], {}
    _raw, merged, centroids = diarizer._perform_clustering(vectors, subsegments)
    found = [SpeakerTurn(start=s["start"], end=s["end"], speaker=s["speaker"]) for s in merged]
    prints = {name: [float(x) for x in vector] for name, vector in centroids.items()}
    return found, prints


def voice_print(
    diarizer: Any, samples: np.ndarray, window: int, cancel: threading.Event
) -> list[float] | None:
    """The mean embedding of a short clip's speech (None: none heard, or cancelled)."""
    found = embeddings(diarizer, samples, window, cancel)
    if found is None or not len(found[1]):
        return None
    return [float(x) for x in found[1].mean(axis=0)]

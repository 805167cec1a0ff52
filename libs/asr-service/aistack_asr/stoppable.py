"""Stop a torch model between the forward steps of its modules when its job is cancelled.

A window of Parakeet's long-form audio (up to minutes) is one call into NeMo, a VAD chunk
of SenseVoice one call into FunASR: a cancel checked between calls would wait for the
whole window. A forward pre-hook on every module checks it between steps instead, so a
cancelled job stops within one module's compute.
"""

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class Stopped(Exception):
    """Raised inside a model's forward pass once its job was cancelled."""


@contextlib.contextmanager
def stoppable(model: Any, cancel: threading.Event) -> Iterator[None]:
    """Within the block, any forward step of `model` (a torch.nn.Module) raises Stopped
    once `cancel` is set. The model must not be used by another thread meanwhile."""

    def check(_module: Any, _inputs: Any) -> None:
        if cancel.is_set():
            raise Stopped

    handles = [module.register_forward_pre_hook(check) for module in model.modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()

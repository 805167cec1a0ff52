"""The fencing token of the lease a workload holds, sent with each of its backend calls.

The workload sets it for its task while it holds the slot; every call to a backend
(`observability.tracing.backend_call`) adds it as FENCE_HEADER, and a backend refuses a
token older than the newest it has accepted.
"""

import contextlib
import contextvars
from collections.abc import Iterator, MutableMapping

from aistack_contract.jobs import FENCE_HEADER

_FENCE: contextvars.ContextVar[int | None] = contextvars.ContextVar("fence", default=None)


@contextlib.contextmanager
def fenced(fence: int) -> Iterator[None]:
    """Within the block, backend calls carry `fence`."""
    token = _FENCE.set(fence)
    try:
        yield
    finally:
        _FENCE.reset(token)


def add_fence(headers: MutableMapping[str, str]) -> None:
    """Add the fencing token of the workload under way, if any, to `headers`."""
    if (fence := _FENCE.get()) is not None:
        headers[FENCE_HEADER] = str(fence)

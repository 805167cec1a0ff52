"""Out of memory as each engine says it."""

import pytest

from aistack_service.memory import out_of_memory


class OutOfMemoryError(RuntimeError):
    """torch's, known by its name."""


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA failed with error out of memory"),  # CTranslate2
        RuntimeError("[enforce fail at alloc_cpu.cpp:114] can't allocate memory"),
        RuntimeError("std::bad_alloc"),
    ],
)
def test_out_of_memory(exc: BaseException) -> None:
    assert out_of_memory(exc)


def test_other_errors_are_not() -> None:
    assert not out_of_memory(RuntimeError("shape mismatch"))
    assert not out_of_memory(ValueError("bad value"))

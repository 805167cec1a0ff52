"""Out of memory, as each engine says it: a kind of error, not a crash."""

_MESSAGES = ("out of memory", "can't allocate memory", "bad_alloc", "failed to allocate")


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says memory ran out: Python's MemoryError, torch's OutOfMemoryError
    (known by name, so that engines without torch need not import it), or an engine's
    message (CTranslate2, ONNX Runtime and CUDA raise RuntimeError with one of these)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    message = str(exc).lower()
    return any(text in message for text in _MESSAGES)

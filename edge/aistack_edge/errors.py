"""Edge-specific errors on top of the contract's envelope."""

from pydantic import ValidationError

from aistack_contract.errors import AistackError, ErrorKind

QUOTED_CHARS = 64
"""How much of a client's string an error message quotes: a message must not carry (nor
an envelope cache keep) megabytes of what a client sent."""


def quoted(value: object, limit: int = QUOTED_CHARS) -> str:
    """`value` as repr() quotes it, cut to its first `limit` characters (with `…`)."""
    text = value if isinstance(value, str) else str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


def malformed(message: str) -> AistackError:
    return AistackError(ErrorKind.MALFORMED, message)


def overflow(message: str) -> AistackError:
    return AistackError(ErrorKind.OVERFLOW, message)


def unavailable(message: str) -> AistackError:
    return AistackError(ErrorKind.NETWORK, message)


class RetryLater(AistackError):
    """503 network with a Retry-After header."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(ErrorKind.NETWORK, message)
        self.retry_after_s = retry_after_s


class SlotBusy(RetryLater):
    def __init__(self, holder: str | None, retry_after_s: int) -> None:
        who = f"held by {holder}" if holder else "held by another request"
        super().__init__(f"the GPU slot is busy ({who}); retry later", retry_after_s)


class SlotSettling(SlotBusy):
    """The lease store lost a lease a moment ago (it started empty, or the key went
    missing while held): its holder may still be at work and take it back."""

    def __init__(self, retry_after_s: int) -> None:
        RetryLater.__init__(
            self,
            "the GPU slot's store (Redis) lost a lease a moment ago (it started empty, or "
            "the key went missing while held): its holder gets one lease time to take it "
            "back first; retry later",
            retry_after_s,
        )


class SlotStoreDown(RetryLater):
    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(
            f"Redis, which holds the GPU slot, is unreachable: {detail}", retry_after_s
        )


def invalid(exc: ValidationError, what: str) -> str:
    """The first problem pydantic found, as `<field path>: <message>` (`what` when the
    whole object is at fault)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or what
    return f"{where}: {first['msg']}"

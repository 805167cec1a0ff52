"""The error envelope every non-2xx answer carries, and its five kinds."""

from enum import StrEnum

from pydantic import BaseModel


class ErrorKind(StrEnum):
    NETWORK = "network"
    MALFORMED = "malformed"
    OVERFLOW = "overflow"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


STATUS_OF_KIND: dict[ErrorKind, int] = {
    ErrorKind.NETWORK: 503,
    ErrorKind.MALFORMED: 400,
    ErrorKind.OVERFLOW: 413,
    ErrorKind.CANCELLED: 499,
    ErrorKind.UNKNOWN: 500,
}

AISTACK = "aistack"


class ErrorBody(BaseModel):
    kind: ErrorKind
    provider: str
    message: str

    @property
    def status(self) -> int:
        return STATUS_OF_KIND[self.kind]


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class AistackError(Exception):
    """An error that becomes the envelope with its kind's HTTP status."""

    def __init__(self, kind: ErrorKind, message: str, provider: str = AISTACK) -> None:
        super().__init__(message)
        self.body = ErrorBody(kind=kind, provider=provider, message=message)

    @property
    def status(self) -> int:
        return self.body.status

    def envelope(self) -> dict:
        """The `ErrorEnvelope` of this error, as JSON-ready data."""
        return {"error": self.body.model_dump(mode="json")}


def kind_for_status(status: int) -> ErrorKind:
    """The envelope kind that best describes an HTTP status from an upstream."""
    for kind, kind_status in STATUS_OF_KIND.items():
        if kind_status == status:
            return kind
    if status == 413:
        return ErrorKind.OVERFLOW
    if 400 <= status < 500:
        return ErrorKind.MALFORMED
    if status in (502, 503, 504):
        return ErrorKind.NETWORK
    return ErrorKind.UNKNOWN


def internal_error(provider: str, request_id: str | None) -> AistackError:
    """An unexpected failure, as clients see it: what failed and the request id to find
    it in the log, never the exception's type and text (which may show paths, data or
    internals)."""
    which = f" (request {request_id})" if request_id else ""
    return AistackError(
        ErrorKind.UNKNOWN, f"internal error in {provider}{which}; its log has the details", provider
    )

"""The edge's tracer and its spans around calls to backends."""

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from aistack_contract.telemetry import inject_traceparent
from aistack_edge.slot.fencing import add_fence

TRACER = trace.get_tracer("aistack_edge")


@contextmanager
def backend_call(name: str, headers: MutableMapping[str, str], url: str) -> Iterator[trace.Span]:
    """A CLIENT span for one call to a backend, its `traceparent` added to `headers`
    (and the fencing token of the workload under way, if any).

    The span is not made current, so it may stay open across an async generator's
    yields; it ends when the block does."""
    span = TRACER.start_span(name, kind=SpanKind.CLIENT, attributes={"server.url": url})
    inject_traceparent(headers, span)
    add_fence(headers)
    try:
        yield span
    except BaseException as exc:
        span.set_status(Status(StatusCode.ERROR, str(exc) or type(exc).__name__))
        raise
    finally:
        span.end()

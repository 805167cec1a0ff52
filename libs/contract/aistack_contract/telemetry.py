"""Tracing and metrics plumbing that the edge and every backend share.

Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, finished spans go to that collector
over OTLP/HTTP; with a trace file, each finished span is appended to it as one JSON
line (for tests and debugging); with neither, no tracer provider is installed:
`current_span` and `server_span` then make no span (no work per request), and spans
started on a tracer directly are the API's no-op spans, which record nothing. The W3C
`traceparent` header carries the context between processes.
"""

import json
import logging
import os
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_W3C = TraceContextTextMapPropagator()
_NO_SPAN = nullcontext(trace.INVALID_SPAN)


class JsonLinesExporter(SpanExporter):
    """Appends each finished span to a file as one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(span)) + "\n" for span in spans)
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS


def span_record(span: ReadableSpan) -> dict:
    """The fields of a span that a reader needs to rebuild the trace tree."""
    ctx = span.context
    return {
        "name": span.name,
        "service": span.resource.attributes.get(SERVICE_NAME),
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


def setup_tracing(service_name: str, trace_file: Path | None = None) -> bool:
    """Install a tracer provider when there is somewhere to send spans; whether one was."""
    endpoint = os.environ.get(OTLP_ENDPOINT)
    if not endpoint and trace_file is None:
        return False
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("%s is set but the OTLP exporter is not installed", OTLP_ENDPOINT)
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            log.info("traces go to %s over OTLP/HTTP", endpoint)
    if trace_file is not None:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(trace_file)))
        log.info("finished spans are appended to %s", trace_file)
    trace.set_tracer_provider(provider)
    return True


def inject_traceparent(headers: MutableMapping[str, str], span: trace.Span) -> None:
    """Add `span`'s W3C `traceparent` to outgoing `headers` (nothing for a no-op span)."""
    _W3C.inject(headers, context=trace.set_span_in_context(span))


def tracing() -> bool:
    """Whether a tracer provider is installed: without one every span is a no-op, and
    the work of making one (context, attributes) can be skipped."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def current_span(
    tracer: trace.Tracer, name: str, **options: object
) -> AbstractContextManager[trace.Span]:
    """`tracer.start_as_current_span(name, **options)`; with no tracer provider, the
    invalid span and no work."""
    if not tracing():
        return _NO_SPAN
    return tracer.start_as_current_span(name, **options)  # type: ignore[arg-type]


def server_span(
    tracer: trace.Tracer, name: str, headers: Mapping[str, str]
) -> AbstractContextManager[trace.Span]:
    """A current SERVER span for one incoming request, child of its `traceparent`."""
    if not tracing():
        return _NO_SPAN
    return tracer.start_as_current_span(
        name, context=_W3C.extract(headers), kind=trace.SpanKind.SERVER
    )


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """A registry's metrics in Prometheus text format, and that format's content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST

"""Metrics, traces, the access log and payload capture of the edge, and their toggles."""

import time
from dataclasses import asdict, dataclass

from aiohttp import web

from aistack_edge import peers
from aistack_edge.config import EdgeSettings
from aistack_edge.errors import malformed
from aistack_edge.observability import exchange
from aistack_edge.observability.access_log import AccessLog, AccessRecord
from aistack_edge.observability.capture import Capture, Captured
from aistack_edge.observability.metrics import BackendRestarts, BackendStates, EdgeMetrics
from aistack_edge.observability.recent import Finished, RecentRequests

_ADMIN = "/admin"


@dataclass
class Toggles:
    """What is on now; each can be switched at run time through the admin API."""

    metrics: bool
    access_log: bool
    capture: bool


class Observability:
    """Holds the edge's metrics, access log and capture; is the GPU slot's observer."""

    def __init__(
        self,
        settings: EdgeSettings,
        backend_states: BackendStates,
        backend_restarts: BackendRestarts,
    ) -> None:
        self.metrics = EdgeMetrics(backend_states, backend_restarts)
        self.recent = RecentRequests(settings.admin_recent)
        self._trusted_proxies = settings.trusted_proxies
        self.access_log = (
            AccessLog(
                settings.access_log_dir,
                settings.access_log_max_age_days * 86400,
                int(settings.access_log_max_total_mb * 2**20),
            )
            if settings.access_log_dir
            else None
        )
        self.capture = (
            Capture(
                settings.capture_dir,
                settings.capture_max_body_kb * 1024,
                settings.capture_max_age_h * 3600,
                int(settings.capture_max_total_mb * 2**20),
                settings.capture_queue,
            )
            if settings.capture_dir
            else None
        )
        self.toggles = Toggles(
            metrics=settings.metrics,
            access_log=self.access_log is not None,
            capture=settings.capture and self.capture is not None,
        )

    def state(self) -> dict:
        return {
            **asdict(self.toggles),
            "access_log_dir": str(self.access_log.directory) if self.access_log else None,
            "capture_dir": str(self.capture.directory) if self.capture else None,
            "capture_dropped": self.capture.dropped if self.capture else 0,
        }

    def switch(self, changes: dict[str, bool]) -> None:
        """Apply toggles; all or none (an unknown name, or a feature with no directory)."""
        for name, value in changes.items():
            if name not in asdict(self.toggles) or not isinstance(value, bool):
                raise malformed(f"{name!r}: expected one of metrics, access_log, capture: bool")
        if changes.get("access_log") and self.access_log is None:
            raise malformed("access_log can't be switched on: AISTACK_ACCESS_LOG_DIR is not set")
        if changes.get("capture") and self.capture is None:
            raise malformed("capture can't be switched on: AISTACK_CAPTURE_DIR is not set")
        for name, value in changes.items():
            setattr(self.toggles, name, value)

    def finish(
        self,
        request: web.Request,
        record: exchange.Exchange,
        status: int,
        outcome: str,
        bytes_out: int,
    ) -> None:
        """Count a finished request, log it and keep it among the recent ones (but the
        admin page's own)."""
        self._finished(
            record,
            request.method,
            request.path,
            status,
            outcome,
            request.content.total_bytes,
            bytes_out,
            self._client(request),
        )

    def finish_part(
        self,
        request: web.Request,
        record: exchange.Exchange,
        status: int,
        outcome: str,
        bytes_in: int,
    ) -> None:
        """Count, log and keep a finished part of `request` (an utterance of a realtime
        session) as a request of its own: method `WS`, the session's path and client."""
        self._finished(
            record, "WS", request.path, status, outcome, bytes_in, 0, self._client(request)
        )

    def _finished(
        self,
        record: exchange.Exchange,
        method: str,
        path: str,
        status: int,
        outcome: str,
        bytes_in: int,
        bytes_out: int,
        client: str | None,
    ) -> None:
        elapsed, at = record.elapsed(), time.time()
        latency_ms = round(elapsed * 1000, 3)
        if not path.startswith(_ADMIN):
            self.recent.add(
                Finished(
                    at=at,
                    request_id=record.request_id,
                    method=method,
                    path=path,
                    status=status,
                    capability=record.capability,
                    model=record.model,
                    outcome=outcome,
                    latency_ms=latency_ms,
                    error_kind=record.error_kind,
                )
            )
        if self.toggles.metrics:
            self.metrics.record(record, outcome, elapsed)
        if self.access_log is not None and self.toggles.access_log:
            wait_s = record.slot_wait_s
            self.access_log.write(
                AccessRecord(
                    record.request_id,
                    method,
                    path,
                    status,
                    bytes_in,
                    bytes_out,
                    client,
                    at,
                    record.capability,
                    record.model,
                    outcome,
                    latency_ms,
                    None if wait_s is None else round(wait_s * 1000, 3),
                )
            )

    def _client(self, request: web.Request) -> str | None:
        """The access log's client: the one a trusted proxy names, else the peer."""
        if self._trusted_proxies and peers.forwarded(request):
            address = peers.client(request, self._trusted_proxies)
            if address is not None:
                return str(address)
        return request.remote

    def keep(self, captured: Captured) -> None:
        if self.capture is not None and not self.capture.submit(captured):
            self.metrics.capture_dropped.inc()

    def close(self) -> None:
        for writer in (self.access_log, self.capture):
            if writer is not None:
                writer.close()

    # The GPU slot's observer: the current request's wait, and the holder gauge.

    def acquired(self, waited_s: float) -> None:
        record = exchange.current()
        if record is None:
            return
        record.slot_wait_s = waited_s
        record.slot_model = record.model
        self.metrics.child(self.metrics.slot_holder, record.capability, record.model).inc()
        if self.toggles.metrics:
            self.metrics.child(self.metrics.slot_wait, record.capability).observe(waited_s)
            self.metrics.child(self.metrics.slot_lane_wait, record.lane).observe(waited_s)

    def refused(self, waited_s: float) -> None:
        record = exchange.current()
        if record is None:
            return
        record.slot_wait_s = waited_s
        record.busy = True
        if self.toggles.metrics:
            self.metrics.child(self.metrics.slot_wait, record.capability).observe(waited_s)

    def lost(self) -> None:
        record = exchange.current()
        if record is not None:
            self.metrics.child(self.metrics.slot_lost, record.capability).inc()

    def stop_overrun(self) -> None:
        record = exchange.current()
        if record is not None:
            self.metrics.child(self.metrics.backend_stuck, record.capability).inc()

    def stuck(self, backend: str, since: float | None) -> None:
        if since is not None:
            self.metrics.slot_stuck.labels(backend).set(since)
        else:
            self.metrics.slot_stuck.remove(backend)

    def released(self, held_s: float) -> None:
        record = exchange.current()
        if record is None:
            return
        if self.toggles.metrics:
            self.metrics.child(self.metrics.slot_hold, record.capability).observe(held_s)
        model = record.slot_model if record.slot_model is not None else record.model
        self.metrics.child(self.metrics.slot_holder, record.capability, model).dec()

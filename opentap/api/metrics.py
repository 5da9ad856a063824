"""GET /metrics: the device in Prometheus' text format (prometheus-client), for admins; and, when the config
says `metrics_listen = "127.0.0.1:PORT"`, the same without a token on that loopback port, for a local
Prometheus or node agent that holds no admin token.

- captures by state and type, and disk used against the quota: read at scrape time (database, engine);
- packets, bytes and kernel drops captured, and flows metered: counters, added when a capture ends (its
  final counts; a running capture's packets count once it ends), since the daemon started;
- tap flows by status, and the reconciler's passes, drift and errors;
- API requests by route template and status, with a latency histogram, counted by a pure ASGI middleware: a
  clock read before and after, and two cached children's updates, some microseconds per call (bench/api_load.py
  keeps the whole call under a millisecond of CPU)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from opentap.auth import Principal
from opentap.db.models import Capture
from opentap.taas.store import TABLES

from .boundary import ASGIApp, Message, Receive, Scope, Send
from .deps import DeviceState, principal
from .errors import ApiError

router = APIRouter(tags=["metrics"])
UNMATCHED = "unmatched"  # a path no route serves: one label, whatever the path (no label per scanner's guess)


class Metrics:
    """The device's registry: the counters kept here and a collector that reads the rest at scrape time."""

    def __init__(self, dev: DeviceState) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("opentap_api_requests", "API requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("opentap_api_request_duration_seconds", "API request latency, to the last byte",
                                 ["route"], registry=self.registry)
        self.packets = Counter("opentap_captured_packets", "Packets captured, by capture type (counted when a "
                               "capture ends)", ["type"], registry=self.registry)
        self.bytes = Counter("opentap_captured_bytes", "Bytes captured (netflow: IP bytes), by capture type",
                             ["type"], registry=self.registry)
        self.drops = Counter("opentap_kernel_drops", "Packets the kernel dropped before tcpdump read them",
                             ["type"], registry=self.registry)
        self.flows = Counter("opentap_flows_metered", "Flow records metered by netflow captures",
                             registry=self.registry)
        self.registry.register(_DeviceCollector(dev))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        dev.engine.on_final.append(self.capture_ended)

    def capture_ended(self, cap: Capture) -> None:
        """Called on the engine thread when a capture reaches its final state."""
        self.packets.labels(cap.type).inc(cap.packets or 0)
        self.bytes.labels(cap.type).inc(cap.bytes or 0)
        self.drops.labels(cap.type).inc(cap.drops_kernel or 0)
        self.flows.inc((cap.stats or {}).get("flows", 0))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # labels() is a locked lookup: once per route, method and status
            children = self._children[key] = (self.requests.labels(route, method, str(status)),
                                               self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """Pure ASGI (no BaseHTTPMiddleware, which costs a task and a stream per call): the status from the response
    start, the route template the router left in the scope."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless a response starts: an exception that escaped everything

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", UNMATCHED), scope["method"], status,
                                 time.perf_counter() - start)


class _DeviceCollector(Collector):
    """What is read at scrape time: the database's captures and tap flows, the engine's disk use, the
    reconciler's counts."""

    def __init__(self, dev: DeviceState) -> None:
        self.dev = dev

    def describe(self) -> list[Metric]:
        return []  # unchecked: collect() reads the database, which registering must not do

    def collect(self) -> Iterator[Metric]:
        dev = self.dev
        with dev.sessions() as s:
            captures = s.execute(sa.select(Capture.state, Capture.type, sa.func.count())
                                 .group_by(Capture.state, Capture.type)).all()
            flows_table = TABLES["tap_flows"]
            tap_flows = s.execute(sa.select(flows_table.c.status, sa.func.count())
                                  .group_by(flows_table.c.status)).all()
        g = GaugeMetricFamily("opentap_captures", "Captures the device holds, by state and type",
                              labels=["state", "type"])
        for state, ctype, n in captures:
            g.add_metric([state, ctype], n)
        yield g
        g = GaugeMetricFamily("opentap_tap_flows", "Tap flows by status", labels=["status"])
        for status, n in tap_flows:
            g.add_metric([status], n)
        yield g
        # on the engine thread, which owns the running captures' directories
        yield GaugeMetricFamily("opentap_disk_used_bytes", "Captured data on disk, all projects",
                                value=dev.engine.call(dev.engine.usage, timeout=10))
        yield GaugeMetricFamily("opentap_disk_quota_bytes", "The device's disk quota for captured data",
                                value=dev.cfg.disk_quota_bytes)
        yield GaugeMetricFamily("opentap_engine_up", "1 while the capture engine runs",
                                value=1 if dev.engine.running else 0)
        rec = dev.datapath
        passes = CounterMetricFamily("opentap_reconciler_passes", "Datapath reconciler passes", labels=["kind"])
        for kind in ("quick", "full"):
            passes.add_metric([kind], rec.passes[kind] if rec else 0)
        yield passes
        counts = rec.counts() if rec else {}  # drift: the mirrors' and the tunnels' together
        yield CounterMetricFamily("opentap_reconciler_drift", "Times the kernel's rules were found not as left",
                                  value=counts.get("drift", 0))
        # a gauge: the count lives in the mirrors' filters, so it goes with a deleted flow
        yield GaugeMetricFamily("opentap_tunnel_oversize_copies", "Mirrored copies of the present flows larger "
                                "than their tunnel carries whole (fragmented by the underlay), at the last full pass",
                                value=counts.get("oversize_copies", 0))
        yield CounterMetricFamily("opentap_reconciler_errors", "Reconciler passes that failed",
                                  value=rec.errors if rec else 0)


@router.get("/metrics", summary="The device's metrics in Prometheus' text format (admins)",
            response_class=Response)
def metrics(request: Request, who: Principal = Depends(principal)) -> Response:
    if not who.is_admin:
        raise ApiError(403, "only admins may read the device's metrics")
    return Response(request.app.state.metrics.text(), media_type=CONTENT_TYPE_LATEST)


def serve_open(dev: DeviceState, metrics: Metrics) -> tuple[Any, Any] | None:
    """The metrics without a token on the config's loopback metrics_listen (a thread of prometheus-client's
    own HTTP server); None when not configured. Returns (server, thread) for shutdown."""
    where = dev.cfg.metrics_listen
    if where is None:
        return None
    from prometheus_client import start_http_server

    return start_http_server(where[1], addr=where[0], registry=metrics.registry)

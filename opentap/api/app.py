"""The FastAPI application: routers, error handling, offline docs, and the engine's life cycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from opentap import __version__, filemodes
from opentap.capture.engine import CaptureEngine
from opentap.config import Config
from opentap.datalock import DataDirLock
from opentap.db.session import Health, open_database
from opentap.taas.store import TaasStore

from . import (
    boundary,
    capabilities,
    captures,
    errors,
    flowroutes,
    keystone,
    metrics,
    neutron,
    openapi,
    overview,
    quotas,
    requestid,
    retrieve,
    ui,
)
from . import rings as ring_routes
from .deployment import Deployment, datapath_for, multihost
from .deps import DeviceState

log = logging.getLogger("opentap")


def create_app(cfg: Config, lock: DataDirLock | None = None) -> FastAPI:
    """The device's app. lock: the data directory's, already held (`opentap serve` takes it first thing); when
    None the app takes it here and lets it go at shutdown. Raises AlreadyRunning, or DatabaseUnusable when the
    database cannot be opened and brought up to date."""
    own_lock = lock is None
    if lock is None:
        lock = DataDirLock(cfg.data_dir)
        lock.acquire()
    try:
        filemodes.tighten(cfg)
        # an older version's key for signing `opentap invoke` calls, which now use the Unix socket instead
        (cfg.data_dir / "invoke.secret").unlink(missing_ok=True)
        db, sessions = open_database(cfg.database_url)
    except BaseException:
        if own_lock:
            lock.release()
        raise
    datapath = datapath_for(sessions, cfg)
    dev = DeviceState(cfg, sessions, CaptureEngine(cfg, sessions),
                      TaasStore(cfg.tap_id_range, pending_delete=datapath is not None, host=cfg.host,
                                shared=multihost(cfg)), datapath)
    hosts = Deployment(sessions, cfg, datapath)
    health = Health(cfg.database_url, sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dev.engine.start()
        if dev.datapath:
            dev.datapath.start()
        hosts.start()
        open_metrics = metrics.serve_open(dev, app.state.metrics)
        try:
            yield
        finally:
            if open_metrics:
                open_metrics[0].shutdown()
            hosts.stop()
            if dev.datapath:
                dev.datapath.stop()
            dev.engine.shutdown()
            db.dispose()
            if own_lock:
                lock.release()

    # telemetry off: OpenTelemetry is not used, and FastAPI would otherwise look up its providers on every call
    app = FastAPI(title="OpenTap", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
                  description="A software-defined network tap device. Authenticate with the `X-Auth-Token` header.")
    app.state.device = dev
    errors.install(app)
    app.add_middleware(boundary.Boundary)  # body size, depth, strings; query NULs and repeats
    app.add_middleware(requestid.RequestId)  # outside Boundary: its rejections get a request id too
    app.state.metrics = metrics.Metrics(dev)
    app.add_middleware(metrics.RequestMetrics, metrics=app.state.metrics)  # outermost: every answer counted

    # first of all routes: matching walks them in order, and monitors poll this one most
    @app.get("/healthz", tags=["health"], summary="Liveness check: the database and the capture engine (no token)",
             responses={503: {"description": "the database or the capture engine is not working"}})
    async def healthz() -> JSONResponse:  # async: a plain def would hop to the thread pool
        database = health.check()
        engine = "ok" if dev.engine.running else "stopped"
        ok = database == "ok" and engine == "ok"
        body = {"status": "ok" if ok else "error", "database": database, "engine": engine}
        if not ok:
            body["msg"] = "; ".join(f"{k}: {v}" for k, v in (("database", database), ("engine", engine)) if v != "ok")
        return JSONResponse(body, status_code=200 if ok else 503)


    # flowroutes before captures: its /captures/{id}/flows must not be taken for a capture id
    for module in (capabilities, flowroutes, captures, retrieve, ring_routes, overview, neutron, quotas, keystone,
                   metrics):
        app.include_router(module.router)
    openapi.install(app)  # the document as the API behaves: errors, security, exact parameters and bodies

    # Interactive docs from files shipped in a Python package, so they work with no internet.
    app.mount("/docs-static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="OpenTap API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")

    ui.install(app)  # the web interface: static files, no token (api/ui/)
    return app

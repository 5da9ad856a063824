"""The FastAPI application: routers, error handling, offline docs, and the engine's life cycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import sessionmaker
from swagger_ui_bundle import swagger_ui_path

from opentap import __version__, auth
from opentap.capture.engine import CaptureEngine
from opentap.config import Config
from opentap.datapath.reconcile import Reconciler, has_net_admin
from opentap.datapath.tc import TcDriver
from opentap.db.session import make_engine, make_sessionmaker, migrate
from opentap.taas.store import TaasStore

from . import capabilities, captures, errors, neutron, retrieve
from .deps import Device

log = logging.getLogger("opentap")


def _datapath(sessions: sessionmaker) -> Reconciler | None:
    """The tc datapath when this process may change tc rules; else tap flows stay DOWN (and say why in the log)."""
    if not has_net_admin():
        log.warning("no CAP_NET_ADMIN: tap flows are stored but not mirrored (run the device as root)")
        return None
    return Reconciler(sessions, TcDriver())


def create_app(cfg: Config) -> FastAPI:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    auth.invoke_secret(cfg, create=True)  # for `opentap invoke`, the SSH forced command
    db = make_engine(cfg.database_url)
    migrate(db)
    sessions = make_sessionmaker(db)
    dev = Device(cfg, sessions, CaptureEngine(cfg, sessions))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dev.engine.start()
        if app.state.datapath:
            app.state.datapath.start()
        try:
            yield
        finally:
            if app.state.datapath:
                app.state.datapath.stop()
            dev.engine.shutdown()
            db.dispose()

    app = FastAPI(title="OpenTap", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="A software-defined network tap device. Authenticate with the `X-Auth-Token` header.")
    app.state.device = dev
    app.state.datapath = _datapath(sessions)
    app.state.taas = TaasStore(cfg.tap_id_range, pending_delete=app.state.datapath is not None)
    errors.install(app)
    for module in (capabilities, captures, retrieve, neutron):
        app.include_router(module.router)

    # Interactive docs from files shipped in a Python package, so they work with no internet.
    app.mount("/docs-static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="OpenTap API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")

    @app.get("/healthz", tags=["health"], summary="Liveness check (no token needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

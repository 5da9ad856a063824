"""The web interface at /ui/: static files shipped in this package (static/, with the one vendored library and
its licence under static/vendor/, rebuilt by scripts/ui-vendor.sh), served by the daemon itself, so a device on a
closed network needs nothing from outside.

The files need no token: they hold no data. Everything the page shows comes from the device's own API, called by
the page with the X-Auth-Token header the person signed in with (kept in sessionStorage, never in a URL). The
files are served with a Content-Security-Policy that allows only this origin's own scripts, styles and API: no
inline script or style, no other origin, no framing, so that text the device returns (capture ids, names,
reasons: user input) cannot become code even if a renderer forgot to escape it (the page builds its DOM with
textContent, never from HTML)."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
PREFIX = "/ui"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
           (b"cross-origin-opener-policy", b"same-origin"),
           (b"cache-control", b"no-cache")]  # revalidated (ETag): an upgraded device's page is never stale

Scope = MutableMapping[str, Any]


class _Secured:
    """The static files with the security headers on every answer they make (a 404 is the API's JSON error)."""

    def __init__(self, app: StaticFiles) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {h for h, _ in HEADERS}
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] += HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    @app.get(PREFIX, include_in_schema=False)
    async def ui_root() -> RedirectResponse:  # relative links in index.html need the slash
        return RedirectResponse(PREFIX + "/", status_code=308)

    app.mount(PREFIX + "/", _Secured(StaticFiles(directory=str(STATIC), html=True)), name="ui")

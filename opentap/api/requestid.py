"""Two things OpenStack's clients expect of every call, done once for all routes in one pure ASGI layer (the
API's cost per call is measured, bench/api_load.py: no BaseHTTPMiddleware, whose task and stream per call
cost more than the rest of a cheap route):

- an `X-Openstack-Request-Id: req-<uuid>` header on every response, as oslo.middleware adds it; the id is left
  in the scope so that the error handler puts it on a 500 (Starlette's outermost layer sends those, past this
  one) and into the log line that tells an administrator what went wrong;
- Neutron's `.json` format suffix (`/v2.0/ports.json`, `/v2.0/ports/{id}.json`), which Neutron accepts on every
  call of its API and means nothing more than JSON, the only format there is: dropped from the path."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: errors.py imports this module, and boundary.py imports errors.py
    from .boundary import ASGIApp, Message, Receive, Scope, Send

NEUTRON_PREFIX = "/v2.0"
HEADER = b"x-openstack-request-id"
SCOPE_KEY = "opentap.request_id"
SUFFIX = ".json"


def request_id(scope: Scope) -> str:
    """The request's id (made here when the middleware did not run, as for an app assembled without it)."""
    found = scope.get(SCOPE_KEY)
    if found is None:
        found = scope[SCOPE_KEY] = f"req-{uuid.uuid4()}"
    return found


class RequestId:
    """The ASGI middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.endswith(SUFFIX) and path.startswith(NEUTRON_PREFIX):
            # in place: the error handler outside this layer reads the same scope
            scope["path"] = path[:-len(SUFFIX)]
            raw = scope.get("raw_path")
            if raw and raw.endswith(SUFFIX.encode()):
                scope["raw_path"] = raw[:-len(SUFFIX)]
        header = (HEADER, request_id(scope).encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)

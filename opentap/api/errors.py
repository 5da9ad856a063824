"""Errors as JSON with a real status. The body keeps the original OpenTap's `status` and `msg` keys."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opentap.capture.errors import RequestError
from opentap.taas.errors import NeutronError, bad_request, method_not_allowed

from .requestid import request_id

log = logging.getLogger("opentap.api")


class ApiError(RequestError):
    pass


def error_response(status: int, msg: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Token realm="opentap", header="X-Auth-Token"'} if status == 401 else None
    return JSONResponse({"status": "error", "msg": msg}, status_code=status, headers=headers)


KEYSTONE_PREFIX = "/v2.0/tenants"  # Keystone's tenants, served beside Neutron's API for its clients (keystone.py)
KEYSTONE_V3 = "/v3"  # and the v3 projects, for clients that resolve a project there
KEYSTONE_WORDS = {404: "The resource could not be found.", 405: "The method is not allowed for the requested URL."}


def is_keystone(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in (KEYSTONE_PREFIX, KEYSTONE_V3))


def keystone_response(status: int, message: str) -> JSONResponse:
    """Keystone's error body, which its clients parse: {"error": {"code", "title", "message"}}."""
    return JSONResponse({"error": {"code": status, "title": HTTPStatus(status).phrase, "message": message}},
                        status_code=status)


def _allowed(req: Request, fallback: str) -> str:
    """Every method of the request's path, from the OpenAPI document (Starlette's 405 names only the first
    route that matched the path, and FastAPI's router nests routes where they cannot be asked)."""
    for template, item in req.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), req.scope["path"]):
            methods = {m.upper() for m in item} | ({"HEAD"} if "get" in item else set())
            return ", ".join(sorted(methods))
    return fallback


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def _request_error(_req: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.msg)

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body", "path"))
            parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        if is_keystone(req.url.path):
            return keystone_response(400, "; ".join(parts) or "Invalid request")
        if req.url.path.startswith("/v2.0"):  # Neutron's clients parse Neutron's bodies
            err400 = bad_request("; ".join(parts) or "Invalid request")
            return JSONResponse(err400.body(), status_code=400)
        return error_response(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(NeutronError)
    async def _neutron(_req: Request, exc: NeutronError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110: list every method of the path, not only the first route's
            headers["Allow"] = _allowed(req, headers.get("Allow", ""))
        if is_keystone(req.url.path):
            response = keystone_response(exc.status_code, KEYSTONE_WORDS.get(exc.status_code, str(exc.detail)))
            response.headers.update(headers)
            return response
        if req.url.path.startswith("/v2.0"):  # Neutron's clients parse Neutron's bodies
            err = method_not_allowed() if exc.status_code == 405 else NeutronError(
                exc.status_code, "HTTPNotFound" if exc.status_code == 404 else "HTTPError", str(exc.detail))
            return JSONResponse(err.body(), status_code=err.status, headers=headers)
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        # Starlette sends this answer from outside every middleware: the request id is added here
        rid = request_id(req.scope)
        log.exception("unhandled error on %s %s [%s]", req.method, req.url.path, rid)
        response = error_response(500, f"internal error in the OpenTap device; see its log ({rid})")
        response.headers["X-Openstack-Request-Id"] = rid
        return response

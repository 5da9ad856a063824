"""Errors as JSON with a real status. The body keeps the original OpenTap's `status` and `msg` keys."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opentap.capture.requests import RequestError

log = logging.getLogger("opentap.api")


class ApiError(RequestError):
    pass


def error_response(status: int, msg: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Token realm="opentap", header="X-Auth-Token"'} if status == 401 else None
    return JSONResponse({"status": "error", "msg": msg}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def _request_error(_req: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.msg)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body", "path"))
            parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return error_response(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return error_response(500, "internal error in the OpenTap device; see its log")

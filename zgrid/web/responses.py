"""One error body for every HTTP API: ``{"error": {"code": ..., "message": ...}}``.

``install_error_handlers`` makes an app answer validation failures, unknown routes,
refusals and its own crashes in that shape; a crash is logged with its traceback and
the client gets a 500 that names no internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from zgrid.web.errors import RequestRefused

__all__ = ["error_body", "error_response", "install_error_handlers", "validation_message"]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(code, message), headers=headers)


def _status_code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def validation_message(exc: RequestValidationError) -> str:
    """'query.size: Input should be less than 1000; body.args: ...' in one line."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg"))
    return "; ".join(str(problem) for problem in problems) or "bad request"


def install_error_handlers(app: FastAPI, *, log: logging.Logger) -> None:
    """Answer every failure of ``app`` with the one error body shape."""

    @app.exception_handler(RequestRefused)
    async def _refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "bad_request", validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return _not_allowed(app, request)
        return error_response(
            exc.status_code,
            _status_code(exc.status_code),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", f"internal error ({type(exc).__name__})")


def _not_allowed(app: FastAPI, request: Request) -> JSONResponse:
    """A 405 whose ``Allow`` names the methods of every route of the path, not only those
    of the first route that matched it (a path may have GET, HEAD and PUT in three routes)."""
    allowed = sorted(
        {
            method
            for route in app.router.routes
            if route.matches(request.scope)[0] != Match.NONE
            for method in getattr(route, "methods", None) or ()
        }
    )
    return error_response(
        405,
        "method_not_allowed",
        f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}",
        headers={"Allow": ", ".join(allowed)},
    )

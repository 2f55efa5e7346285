"""An OpenAPI that tells the truth about errors.

Every error a zgrid server answers has one body, ``ErrorBody``; validation failures
answer 400 (``install_error_handlers``), never FastAPI's 422. Routes declare the
errors only they can answer with ``error_responses(413, 408, ...)`` in their
decorator's ``responses=``; ``document_errors(app)`` then removes every 422 from the
app's spec and adds what every route of its kind can answer: 400 where there are
parameters or a body, 404 where there are path parameters (a value the route does
not know, or one that does not match it), and 500 everywhere.

Not documented: the connection guard's 431 (headers too large, no body) and 503
(too many connections, plain text), which uvicorn answers before any route runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

__all__ = ["ErrorBody", "ErrorDetail", "document_errors", "error_responses"]

_DESCRIPTIONS = {
    400: "Bad request: a parameter or the body is malformed or refused",
    401: "Unauthorized: the request is not signed, or its signature does not hold",
    403: "Forbidden: the signer may not do this",
    404: "Not found: no such thing, or no such route",
    408: "Request timeout: the body stalled",
    413: "Payload too large: the body is larger than allowed",
    500: "Internal error: the server failed; the message names no internals",
    503: "Unavailable: storage failed or the server is shutting down",
}
_ALWAYS = (500,)
_REMOVED = ("HTTPValidationError", "ValidationError")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str


class ErrorBody(BaseModel):
    """``{"error": {"code": ..., "message": ...}}``: the one error body of every API."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


def _description(status: int) -> str:
    if status in _DESCRIPTIONS:
        return _DESCRIPTIONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route decorator: each status answered with ``ErrorBody``."""
    return {
        status: {"model": ErrorBody, "description": _description(status)} for status in statuses
    }


def _error_schemas() -> dict[str, Any]:
    schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {**definitions, "ErrorBody": schema}


def _error_answer(status: int) -> dict[str, Any]:
    return {
        "description": _description(status),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def _document(operation: dict[str, Any], every: Iterable[int]) -> None:
    answers: dict[str, Any] = operation.setdefault("responses", {})
    answers.pop("422", None)
    parameters = operation.get("parameters", [])
    wanted = set(every)
    if parameters or "requestBody" in operation:
        wanted.add(400)
    if any(parameter.get("in") == "path" for parameter in parameters):
        wanted.add(404)
    for status in wanted:
        answers.setdefault(str(status), _error_answer(status))
    operation["responses"] = dict(sorted(answers.items()))


def _uses(document: Any, name: str) -> bool:
    return f'"#/components/schemas/{name}"' in json.dumps(document)


def document_errors(app: FastAPI, *, every: Iterable[int] = _ALWAYS) -> None:
    """Make ``app.openapi()`` list no 422, and ``ErrorBody`` for the errors routes answer.

    ``every``: statuses any route of this app may answer (500 by default; e.g. add
    503 where storage can fail under every route).
    """
    always = tuple(every)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for path in schema.get("paths", {}).values():
            for method, operation in path.items():
                if method in {"get", "put", "post", "delete", "patch", "head", "options"}:
                    _document(operation, always)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        removed = {name: schemas.pop(name) for name in _REMOVED if name in schemas}
        if any(_uses(schema, name) for name in removed):  # a route still names them itself
            schemas.update(removed)
        schemas.update(_error_schemas())
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

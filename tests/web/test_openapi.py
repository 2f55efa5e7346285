"""The OpenAPI of an app with ``document_errors``: no 422, and ``ErrorBody`` for every
error its routes answer."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request

from zgrid.web import (
    ErrorBody,
    document_errors,
    error_body,
    error_responses,
    install_error_handlers,
    read_body,
)

log = logging.getLogger("tests.web")


def _app(**options: Any) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, log=log)

    @app.get("/items/{item}")
    async def item(item: Annotated[int, Path(ge=0)]) -> dict[str, int]:
        return {"item": item}

    @app.get("/items")
    async def items(page: Annotated[int, Query(ge=1)] = 1) -> list[int]:
        return [page]

    @app.get("/head")
    async def head() -> dict[str, int]:
        return {"height": 1}

    @app.post(
        "/upload",
        responses=error_responses(408, 413),
        openapi_extra={
            "requestBody": {"content": {"application/octet-stream": {"schema": {}}}},
        },
    )
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await read_body(request, limit=10))}

    document_errors(app, **options)
    return app


def _statuses(spec: dict[str, Any], path: str, method: str = "get") -> set[str]:
    return set(spec["paths"][path][method]["responses"])


def test_no_422_and_every_error_status_is_documented() -> None:
    spec = _app().openapi()
    assert "422" not in json.dumps(spec)
    assert "HTTPValidationError" not in json.dumps(spec)
    assert _statuses(spec, "/items/{item}") == {"200", "400", "404", "500"}
    assert _statuses(spec, "/items") == {"200", "400", "500"}
    assert _statuses(spec, "/head") == {"200", "500"}
    assert _statuses(spec, "/upload", "post") == {"200", "400", "408", "413", "500"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)


def test_the_error_body_schema_is_the_body_the_handlers_send() -> None:
    spec = _app().openapi()
    schemas = spec["components"]["schemas"]
    body = schemas["ErrorBody"]
    assert body["required"] == ["error"]
    assert body["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "message"}
    assert ErrorBody.model_validate(error_body("bad_request", "query.page: too small"))


def test_statuses_every_route_answers_can_be_named() -> None:
    spec = _app(every=(500, 503)).openapi()
    assert _statuses(spec, "/head") == {"200", "500", "503"}
    app = _app()
    assert app.openapi() is app.openapi()  # built once, then kept

"""The ledger's OpenAPI describes what the server answers: every status, content type
and body, with references that resolve and no 422 (validation answers 400)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.chain.conftest import LedgerProcess

METHODS = {"get", "post", "put", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def spec(shared_ledger: LedgerProcess) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{shared_ledger.url}/openapi.json", timeout=10).json()
    return document


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                yield path, method, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    for ref in set(_refs(spec)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"], ref


def test_validation_is_documented_as_400_not_422(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    assert '"422"' not in text and "HTTPValidationError" not in text
    for path, method, operation in _operations(spec):
        answers = operation["responses"]
        parameters = operation.get("parameters", [])
        if parameters or "requestBody" in operation:
            assert "400" in answers, (method, path)
        if any(parameter["in"] == "path" for parameter in parameters):
            assert "404" in answers, (method, path)
        if "requestBody" in operation:
            assert {"408", "413"} <= set(answers), (method, path)
        assert {"500", "503"} <= set(answers), (method, path)
        for status, answer in answers.items():
            if status[0] in "45":
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


def test_every_answer_has_a_typed_body(spec: dict[str, Any]) -> None:
    for path, method, operation in _operations(spec):
        content = operation["responses"]["200"]["content"]
        if path == "/events/stream":
            assert set(content) == {"text/event-stream"}
            continue
        assert set(content) == {"application/json"}, (method, path)
        schema = content["application/json"]["schema"]
        if schema.get("type") == "array":
            schema = schema["items"]
        refs = [schema] if "$ref" in schema else schema.get("anyOf", [])
        assert refs and all("$ref" in ref for ref in refs), (method, path, schema)


def test_request_bodies_name_the_transaction(spec: dict[str, Any]) -> None:
    single = spec["paths"]["/transactions"]["post"]["requestBody"]
    batch = spec["paths"]["/transactions/batch"]["post"]["requestBody"]
    transaction = {"$ref": "#/components/schemas/SignedTransaction"}
    assert single["content"]["application/json"]["schema"] == transaction
    assert transaction in batch["content"]["application/json"]["schema"]["items"]["anyOf"]
    body = spec["components"]["schemas"]["SignedTransaction"]["properties"]["body"]
    assert body == {"$ref": "#/components/schemas/TransactionBody"}


def test_answers_are_what_the_spec_names(shared_ledger: LedgerProcess) -> None:
    # The models check every answer on the way out; a mismatch would be a 500.
    for path in ("/chain/head", "/genesis", "/blocks/0", "/blocks", "/events", "/nodes"):
        response = httpx.get(f"{shared_ledger.url}{path}", timeout=10)
        assert response.status_code == 200, (path, response.text)


def test_event_ids_are_documented_exactly(spec: dict[str, Any]) -> None:
    # The documented pattern is the one the server checks: every id it allows is
    # answered, every other refused (up to the largest height SQLite holds).
    events = spec["paths"]["/events"]["get"]["parameters"]
    stream = spec["paths"]["/events/stream"]["get"]["parameters"]
    after = next(p for p in events if p["name"] == "after")["schema"]["pattern"]
    header = next(p for p in stream if p["name"] == "last-event-id")["schema"]
    assert header["type"] == "string"  # a header is never null
    largest = 2**63 - 1
    for text, allowed in [
        ("0--1", True),
        (f"{largest}-{largest}", True),
        (f"{largest + 1}-0", False),
        ("00-0", False),
        ("1_0-0", False),
        ("null", False),
    ]:
        assert bool(re.fullmatch(after, text)) is allowed, text
        assert bool(re.fullmatch(header["pattern"], text)) is allowed, text
    assert re.fullmatch(header["pattern"], "")

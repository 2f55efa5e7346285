"""The JSON Schema file: valid Draft 2020-12, shipped with the package, and what the loader
really validates against."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import zgrid.client.spec.schema as schema_module
from tests.client.spec.conftest import only_problem
from zgrid.client import parse_spec, spec_schema, spec_schema_text

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_FILE = ROOT / "zgrid" / "client" / "spec" / "spec.schema.json"


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert spec_schema() == schema
    assert spec_schema_text() == SCHEMA_FILE.read_text(encoding="utf-8")


def test_schema_is_package_data() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = project["tool"]["setuptools"]["package-data"]
    assert "spec.schema.json" in package_data["zgrid.client.spec"]
    dependencies = " ".join(project["project"]["dependencies"])
    assert "PyYAML" in dependencies
    assert "jsonschema" in dependencies


def test_schema_describes_every_field() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, field in node.get("properties", {}).items():
                assert "description" in field or "$ref" in field, f"{where}.{name}"
            for key, value in node.items():
                walk(value, f"{where}.{key}")

    walk(spec_schema(), "$")


@pytest.fixture
def patched_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A copy of the schema the loader will use instead of the file's."""
    schema = copy.deepcopy(spec_schema())
    monkeypatch.setattr(schema_module, "spec_schema", lambda: schema)
    schema_module._validator.cache_clear()
    yield schema
    schema_module._validator.cache_clear()


def test_the_loader_validates_against_the_schema_file(patched_schema: dict[str, Any]) -> None:
    # cpu's bounds are stated only in the schema: with the file's, 300 is refused ...
    text = "name: app\nmachines: [{name: web, flist: busybox, cpu: 300}]\n"
    assert only_problem(text).message == "must be at most 256, got 300"
    # ... and with a schema that allows it, it is taken.
    patched_schema["$defs"]["machine"]["properties"]["cpu"]["maximum"] = 512
    schema_module._validator.cache_clear()
    assert parse_spec(text).machines[0].cpu == 300


def test_unknown_fields_follow_the_schema(patched_schema: dict[str, Any]) -> None:
    patched_schema["properties"]["notes"] = {"type": "string"}
    assert parse_spec("name: app\nnotes: hello\n").name == "app"

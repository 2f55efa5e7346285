"""The spec's JSON Schema (``spec.schema.json``, shipped with the package) and its errors as
problems at the line and column of the offending key or value."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from zgrid.client.errors import SpecProblem
from zgrid.client.spec.document import Document, Path

if TYPE_CHECKING:
    import jsonschema

__all__ = ["schema_problems", "spec_schema", "spec_schema_text"]

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "boolean": "true or false",
    "number": "a number",
    "null": "null",
}


def spec_schema_text() -> str:
    """The schema as it is in the package, for editors (``zgrid spec schema``)."""
    return resources.files(__package__).joinpath("spec.schema.json").read_text(encoding="utf-8")


def spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(spec_schema_text())
    return schema


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # noqa: PLC0415  # loaded on use: `zgrid --help` must start fast

    base = jsonschema.Draft202012Validator
    # 2.0 is not an integer here: a size or a count written as a float is a mistake.
    strict = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    validator_class: Any = jsonschema.validators.extend(base, type_checker=strict)  # type: ignore[no-untyped-call]
    schema = spec_schema()
    base.check_schema(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def schema_problems(document: Document) -> list[SpecProblem]:
    """Every way the document's data breaks the schema, one problem each."""
    problems: list[SpecProblem] = []
    for error in _validator().iter_errors(document.data):
        path: Path = tuple(error.absolute_path)
        subschema: Any = error.schema
        rule: Any = error.validator_value
        if "propertyNames" in error.absolute_schema_path:
            # The error is about a key (error.instance): point at that key.
            key_path = (*path, str(error.instance))
            problems.append(document.problem(key_path, _message(error), key=True))
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = sorted(subschema.get("properties", {}))
            for key in error.instance:
                if key not in known:
                    problems.append(
                        document.problem(
                            (*path, key),
                            f"unknown field {key!r} (known: {', '.join(known)})",
                            key=True,
                        )
                    )
        elif error.validator == "required" and isinstance(error.instance, dict):
            for key in rule:
                if key not in error.instance:
                    problems.append(document.problem(path, f"missing required field {key!r}"))
        else:
            problems.append(document.problem(path, _message(error)))
    return problems


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _message(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    title = schema.get("title")
    value: Any = error.instance
    rule: Any = error.validator_value
    if error.validator == "type":
        if title == "size":
            return f"must be a size ({schema['description']}), got {_shown(value)}"
        if title == "text" and isinstance(value, bool | int | float):
            return f'must be text, got {_shown(value)}: write it quoted, "{json.dumps(value)}"'
        types = [rule] if isinstance(rule, str) else list(rule)
        wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in types)
        return f"must be {wanted}, got {_shown(value)}"
    if error.validator == "pattern":
        what = title or "value"
        hint = f": {schema['description']}" if title and "description" in schema else ""
        return f"{_shown(value)} is not a valid {what}{hint}"
    if error.validator == "minimum":
        return f"must be at least {rule}, got {value}"
    if error.validator == "maximum":
        return f"must be at most {rule}, got {value}"
    if error.validator == "minLength":
        return "must not be empty" if rule == 1 else f"must be at least {rule} characters long"
    if error.validator == "maxLength":
        return f"must be at most {rule} characters long, got {len(value)}"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, rule))}, got {_shown(value)}"
    if error.validator in ("minItems", "minProperties"):
        return f"must have at least {rule} item(s)"
    if error.validator in ("maxItems", "maxProperties"):
        return f"must have at most {rule} items, got {len(value)}"
    if error.validator == "uniqueItems":
        return "must not list the same item twice"
    return error.message

"""The YAML layer: syntax errors at their position, and what a spec may not contain."""

from __future__ import annotations

import pytest

from tests.client.spec.conftest import only_problem, problems_of
from zgrid.client import parse_spec


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("name: x\nmachines:\n  - name: a\n   flist: b\n", 4, 4, "YAML: expected <block end>, but found '<block mapping start>' (while parsing a block collection at line 3)"),
        ("name: [x\n", 2, 1, "YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 1)"),
        ("name: x\n\tmachines: []\n", 2, 1, "YAML: found character '\\t' that cannot start any token"),
        ('name: "x\n', 2, 1, "YAML: found unexpected end of stream (while scanning a quoted scalar at line 1)"),
        ("name: x\n---\nname: y\n", 2, 1, "YAML: expected a single document in the stream at line 1, but found another document"),
        ("name: x\n\x07\n", 2, 1, "YAML: the character U+0007 is not allowed"),
        ("", 1, 1, "the spec is empty"),
        ("# nothing\n", 1, 1, "the spec is empty"),
    ],
)  # fmt: skip
def test_yaml_errors_carry_their_position(text: str, line: int, column: int, message: str) -> None:
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.path, problem.message) == (
        line,
        column,
        "",
        message,
    )


def test_aliases_and_anchors_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    problem = only_problem(bomb)
    assert (problem.line, problem.column) == (1, 4)
    assert problem.message == "YAML: anchors and aliases are not allowed in a spec"
    assert only_problem("name: x\nplacement: *a\n").message.startswith("YAML: anchors and aliases")


def test_deep_nesting_is_refused() -> None:
    problem = only_problem("name: x\nplacement: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problem.line == 2
    assert problem.message == "YAML: nested deeper than 32 levels"


def test_duplicate_key_points_at_the_second() -> None:
    problem = only_problem("name: x\nmachines:\n  - name: a\n    flist: b\n    name: c\n")
    assert (problem.line, problem.column, problem.path) == (5, 5, "machines[0].name")
    assert problem.message == "duplicate key 'name' (first given at line 3)"


def test_keys_must_be_text() -> None:
    found = problems_of("name: x\n1: y\n? [a]\n: z\nnull: 3\n")
    assert [(p.line, p.column, p.message) for p in found] == [
        (2, 1, "keys must be text, got 1 (quote it)"),
        (3, 3, "keys must be text, got a list or mapping (quote it)"),
        (5, 1, "keys must be text, got None (quote it)"),
    ]


@pytest.mark.parametrize(
    "tagged",
    ["!!python/object/apply:os.system ['true']", "!!binary aGk=", "!foo x", "!!timestamp 2001-12-14", "!!set {a: null}"],
)  # fmt: skip
def test_only_core_tags(tagged: str) -> None:
    problem = only_problem(f"name: x\nplacement: {{country: {tagged}}}\n")
    assert (problem.line, problem.column, problem.path) == (2, 22, "placement.country")
    assert "is not allowed (only YAML's core tags)" in problem.message


def test_core_tags_and_yaml_1_2_scalars() -> None:
    spec = parse_spec(
        "name: x\n"
        "placement: {country: NO, farm: !!str 12, certified: !!bool true}\n"
        "machines:\n"
        "  - {name: a, flist: on, cpu: 0o10, replicas: 0x2, memory: !!int '1073741824'}\n"
    )
    assert spec.placement.country == "NO"  # YAML 1.1 would read false
    assert spec.placement.farm == "12"
    assert spec.placement.certified is True
    machine = spec.machines[0]
    assert (machine.flist, machine.cpu, machine.replicas, machine.memory) == ("on", 8, 2, 2**30)
    problem = only_problem("name: x\nmachines: [{name: a, flist: b, cpu: !!int 'z'}]\n")
    assert (problem.path, problem.message) == ("machines[0].cpu", "'z' is not a valid int")


def test_long_numbers_are_refused_before_conversion() -> None:
    problem = only_problem("name: x\nmachines: [{name: a, flist: b, cpu: " + "9" * 5000 + "}]\n")
    assert (problem.line, problem.column, problem.path) == (2, 37, "machines[0].cpu")
    assert problem.message == "a number of more than 40 characters"


def test_the_document_must_be_a_mapping() -> None:
    problem = only_problem("- a\n")
    assert (problem.line, problem.column, problem.path) == (1, 1, "")
    assert problem.message.startswith("must be a mapping")


def test_the_number_of_values_is_bounded() -> None:
    many = "name: x\nplacement: {nodes: [" + "1, " * 20_000 + "1]}\n"
    problem = only_problem(many)
    assert problem.message == "YAML: more than 10000 values in one spec"
    assert problem.line == 2


def test_text_with_nul_is_refused() -> None:
    problem = only_problem('name: x\nmachines: [{name: a, flist: b, entrypoint: "/bin/sh\\0-c"}]\n')
    assert (problem.line, problem.column, problem.path) == (2, 44, "machines[0].entrypoint")
    assert problem.message == "text must not contain the NUL character"

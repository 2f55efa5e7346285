"""Helpers for the spec tests: the problems a text has, as (line, column, path, message)."""

from __future__ import annotations

import textwrap

import pytest

from zgrid.client import SpecError, SpecProblem, parse_spec


def problems_of(text: str) -> list[SpecProblem]:
    """Every problem ``parse_spec`` reports for ``text`` (dedented); fails if it is valid."""
    with pytest.raises(SpecError) as caught:
        parse_spec(textwrap.dedent(text), source="app.yaml")
    assert caught.value.source == "app.yaml"
    return list(caught.value.problems)


def only_problem(text: str) -> SpecProblem:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]

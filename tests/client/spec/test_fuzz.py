"""Whatever the text, the loader returns a Spec or raises SpecError with located problems."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zgrid.client import Spec, SpecError, parse_spec

_SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.sampled_from(
        ["256MiB", "1.5GiB", "2GB2", "-1", "web", "/data", "..", "NO", "~", "", "0x1F"]
    ),
    st.text(max_size=8),
)
_KEYS = st.sampled_from(
    ["name", "machines", "disks", "zdbs", "placement", "flist", "memory", "cpu", "disk", "env",
     "mountpoint", "replicas", "nodes", "farm", "size", "machine", "min_free", "other"]
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=25,
)


def _yaml(value: object) -> str:
    """A flow-style YAML text of ``value`` (quoting text so keys and values stay text)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _check(text: str) -> None:
    lines = text.count("\n") + 1
    try:
        assert isinstance(parse_spec(text), Spec)
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert 1 <= problem.line <= lines + 1, problem
            assert problem.column >= 1
            assert problem.message


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_structured_documents(document: dict[str, object]) -> None:
    _check(_yaml(document))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("name: -[]{},&*!'\"#|>\n\t 0aZ%@`?")), max_size=60))
def test_arbitrary_text(text: str) -> None:
    _check(text)

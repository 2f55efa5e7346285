"""A YAML text read into plain data, with the line and column of every key and value.

Safe by construction and bounded: it composes nodes with PyYAML's pure-Python reader, scanner and
parser (no object construction at all) and turns them into dicts, lists, text, numbers,
booleans and None itself. Plain scalars follow YAML 1.2's core schema, so ``NO`` and
``on`` stay text and ``010`` is ten. Refused: anchors and aliases (no expansion bombs),
nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_VALUES` values, tags other than the core ones, keys that are not
text, and the same key twice in one mapping.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zgrid.client.errors import SpecProblem

if TYPE_CHECKING:
    import yaml

__all__ = ["MAX_DEPTH", "MAX_VALUES", "Document", "Path", "format_path", "read_document"]

MAX_DEPTH = 32  # a spec is a few levels deep; this only stops a parser stack bomb
MAX_VALUES = 10_000  # keys, items and scalars: a big spec has a few hundred (parsing is linear)
MAX_NUMBER_TEXT = 40  # digits of a number written in YAML

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column

_CORE = "tag:yaml.org,2002:"
_PLAIN = "tag:zgrid:plain"  # a plain scalar without a tag: resolved by the core schema below
_NULL = re.compile(r"~|null|Null|NULL|")
_TRUE = re.compile(r"true|True|TRUE")
_FALSE = re.compile(r"false|False|FALSE")
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_path(path: Path) -> str:
    """``("machines", 1, "memory")`` -> ``"machines[1].memory"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += "[" + repr(part) + "]"
    return text


@dataclass
class Document:
    """The data of a spec file, where each part of it was, and what was wrong with it."""

    data: Any = None
    values: dict[Path, Position] = field(default_factory=dict)  # where each value starts
    keys: dict[Path, Position] = field(default_factory=dict)  # where each mapping key is
    refused: set[Path] = field(default_factory=set)  # values already reported
    problems: list[SpecProblem] = field(default_factory=list)

    def position(self, path: Path, *, key: bool = False) -> Position:
        """Where ``path`` is (its key when ``key``), else its nearest ancestor; 1:1 at worst."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return (1, 1)

    def problem(self, path: Path, message: str, *, key: bool = False) -> SpecProblem:
        line, column = self.position(path, key=key)
        return SpecProblem(format_path(path), line, column, message)

    def add(self, path: Path, message: str, *, key: bool = False) -> None:
        self.problems.append(self.problem(path, message, key=key))


def _position(mark: yaml.Mark | None) -> Position:
    return (1, 1) if mark is None else (mark.line + 1, mark.column + 1)


def _loader(text: str) -> Any:
    import yaml  # noqa: PLC0415  # loaded on use: `zgrid --help` must start fast
    from yaml.composer import ComposerError  # noqa: PLC0415

    class Loader(
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        yaml.resolver.BaseResolver,
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            yaml.resolver.BaseResolver.__init__(self)
            self.depth = 0
            self.values = 0

        def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
            if kind is yaml.ScalarNode:
                return _PLAIN if implicit[0] else _CORE + "str"
            return _CORE + ("seq" if kind is yaml.SequenceNode else "map")

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise ComposerError(
                    None, None, "anchors and aliases are not allowed in a spec", event.start_mark
                )
            self.values += 1
            if self.values > MAX_VALUES:
                raise ComposerError(
                    None, None, f"more than {MAX_VALUES} values in one spec", event.start_mark
                )
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader(text)


def read_document(text: str) -> Document:
    """The plain data of one YAML document; YAML errors and refusals are in ``problems``."""
    import yaml  # noqa: PLC0415  # loaded on use: `zgrid --help` must start fast

    document = Document()
    loader = None
    try:
        loader = _loader(text)  # the reader refuses control characters right away
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "not valid YAML"
        if exc.context and exc.context_mark is not None and exc.problem:
            context = f"{exc.context} at line {exc.context_mark.line + 1}"
            if exc.problem.startswith("but "):  # "expected a single document …, but found …"
                message = f"{context}, {exc.problem}"
            else:
                message += f" ({context})"
        document.problems.append(SpecProblem("", *_position(mark), f"YAML: {message}"))
        return document
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        document.problems.append(
            SpecProblem(
                "", line, column, f"YAML: the character U+{exc.character:04X} is not allowed"
            )
        )
        return document
    except yaml.YAMLError as exc:  # pragma: no cover - every error PyYAML raises is one of above
        document.problems.append(SpecProblem("", 1, 1, f"YAML: {exc}"))
        return document
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        document.problems.append(SpecProblem("", 1, 1, "the spec is empty"))
        return document
    document.data = _convert(root, (), document)
    return document


def _convert(node: yaml.Node, path: Path, document: Document) -> Any:
    import yaml  # noqa: PLC0415

    document.values[path] = _position(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _CORE + "map":
            return _refuse(node, path, document)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(key_node, path, document)
            if key is None:
                continue
            if key in result:
                first = document.keys[(*path, key)][0]
                document.problems.append(
                    SpecProblem(
                        format_path((*path, key)),
                        *_position(key_node.start_mark),
                        f"duplicate key {key!r} (first given at line {first})",
                    )
                )
                continue
            document.keys[(*path, key)] = _position(key_node.start_mark)
            result[key] = _convert(value_node, (*path, key), document)
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _CORE + "seq":
            return _refuse(node, path, document)
        return [_convert(item, (*path, index), document) for index, item in enumerate(node.value)]
    return _scalar(node, path, document)


def _key(node: yaml.Node, path: Path, document: Document) -> str | None:
    import yaml  # noqa: PLC0415

    probe = Document()
    value = _scalar(node, path, probe) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(value, str) and not probe.problems:
        return value
    shown = repr(value) if isinstance(node, yaml.ScalarNode) else "a list or mapping"
    document.problems.append(
        SpecProblem(
            format_path(path),
            *_position(node.start_mark),
            f"keys must be text, got {shown} (quote it)",
        )
    )
    return None


def _refuse(node: yaml.Node, path: Path, document: Document) -> None:
    document.refused.add(path)
    shown = "!!" + node.tag.removeprefix(_CORE) if node.tag.startswith(_CORE) else node.tag
    document.add(path, f"the tag {shown} is not allowed (only YAML's core tags)")


def _scalar(node: yaml.Node, path: Path, document: Document) -> Any:
    text = str(node.value)
    tag = node.tag
    if tag == _PLAIN:
        tag = _core_tag(text)
    if tag == _CORE + "str":
        if "\0" in text:  # only a "\0" escape gets it here; no program takes it in a string
            document.refused.add(path)
            document.add(path, "text must not contain the NUL character")
            return None
        return text
    if tag == _CORE + "null":
        if _NULL.fullmatch(text):
            return None
    elif tag == _CORE + "bool":
        if _TRUE.fullmatch(text) or _FALSE.fullmatch(text):
            return bool(_TRUE.fullmatch(text))
    elif tag == _CORE + "int":
        if len(text) > MAX_NUMBER_TEXT:
            document.refused.add(path)
            document.add(path, f"a number of more than {MAX_NUMBER_TEXT} characters")
            return None
        if _INT.fullmatch(text):
            return int(text)
        if _OCT.fullmatch(text):
            return int(text[2:], 8)
        if _HEX.fullmatch(text):
            return int(text[2:], 16)
    elif tag == _CORE + "float":
        if _FLOAT.fullmatch(text):
            return float(text)
        if _INF.fullmatch(text):
            return -math.inf if text.startswith("-") else math.inf
        if _NAN.fullmatch(text):
            return math.nan
    else:
        return _refuse(node, path, document)
    document.refused.add(path)
    document.add(path, f"{text!r} is not a valid {tag.removeprefix(_CORE)}")
    return None


def _core_tag(text: str) -> str:
    if _NULL.fullmatch(text):
        return _CORE + "null"
    if _TRUE.fullmatch(text) or _FALSE.fullmatch(text):
        return _CORE + "bool"
    if _INT.fullmatch(text) or _OCT.fullmatch(text) or _HEX.fullmatch(text):
        return _CORE + "int"
    if _FLOAT.fullmatch(text) or _INF.fullmatch(text) or _NAN.fullmatch(text):
        return _CORE + "float"
    return _CORE + "str"

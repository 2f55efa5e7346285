"""Fuzzing the .fl reader: byte flips and SQL-level mutations of a small valid flist, the
regression corpus, and a coverage-guided atheris run; only the flist package's own errors
may escape, and a refused unpack leaves nothing behind (tests/fuzz/flist_target.py)."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.atheris_run import CORPUS, run_atheris
from tests.fuzz.budget import count, fuzz_seconds, fuzz_settings, keep_running
from tests.fuzz.flist_target import one_input, write_seed
from zgrid.flist import FlistReader, check_tree

FLIST_CORPUS = CORPUS / "flist"
SEED = (FLIST_CORPUS / "valid-small.fl").read_bytes()
SHORT_ATHERIS_SECONDS = 10

COLUMNS = {
    "inode": ("ino", "parent", "name", "size", "uid", "gid", "mode", "rdev", "ctime", "mtime"),
    "extra": ("ino", "data"),
    "block": ("ino", "id", "key"),
    "tag": ("key", "value"),
    "route": ("start", "end", "url"),
    "link": ("ino", "target"),
}
TABLES = sorted(COLUMNS)
_TYPES = (stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFSOCK)

# Values an flist's author may put anywhere: SQLite columns take any type.
EDGE_INTEGERS = st.sampled_from(
    [-(1 << 63), -(1 << 32), -1, 0, 1, 2, 255, 256, 1 << 16, (1 << 31) - 1, 1 << 31]
    + [(1 << 32) - 1, 1 << 32, (1 << 40), (1 << 63) - 1, 0o170000, 0o4755]
    + [kind | 0o755 for kind in _TYPES]
    + [(1 << 32) + stat.S_IFDIR, 512 * 1024, 512 * 1024 + 1]
)
VALUES = st.one_of(
    st.none(),
    EDGE_INTEGERS,
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["", ".", "..", "/", "a/b", "x" * 300, "../../etc", "\0", "hostname"]),
    st.binary(max_size=40),
    st.sampled_from([b"", b"\xff", b"/etc/passwd", b"../../..", bytes(32)]),
)


@dataclass(frozen=True)
class Mutation:
    """SQL statements that change the seed, and what the last one binds."""

    sql: tuple[str, ...]
    args: tuple[object, ...] = ()


def _row(table: str, offset: int) -> str:
    return f"rowid = (SELECT rowid FROM {table} ORDER BY rowid LIMIT 1 OFFSET {offset})"


# Most of what the checks look at is in the inode table: mutate it most.
WEIGHTED_TABLES = st.one_of(st.just("inode"), st.just("inode"), st.sampled_from(TABLES))
WEIGHTED_VALUES = st.one_of(EDGE_INTEGERS, EDGE_INTEGERS, VALUES)


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    table = draw(WEIGHTED_TABLES)
    offset = draw(st.integers(min_value=0, max_value=7))
    kind = draw(st.sampled_from(["update"] * 5 + ["delete", "insert", "schema", "name"]))
    if kind == "update":
        column = draw(st.sampled_from(COLUMNS[table]))
        value = draw(WEIGHTED_VALUES)
        as_text = isinstance(value, bytes) and draw(st.booleans())  # text that is not UTF-8
        placeholder = "CAST(? AS TEXT)" if as_text else "?"
        update = f"UPDATE {table} SET {column} = {placeholder} WHERE {_row(table, offset)}"
        return Mutation((update,), (value,))
    if kind == "delete":
        return Mutation((f"DELETE FROM {table} WHERE {_row(table, offset)}",))
    if kind == "insert":
        columns = COLUMNS[table]
        values = tuple(draw(WEIGHTED_VALUES) for _ in columns)
        marks = ", ".join("?" for _ in columns)
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        return Mutation((insert,), values)
    if kind == "name":  # a schema entry renamed to any bytes, behind SQLite's back
        column = draw(st.sampled_from(["name", "tbl_name"]))
        rename = f"UPDATE sqlite_master SET {column} = CAST(? AS TEXT) WHERE {_row('sqlite_master', offset)}"
        return Mutation(("PRAGMA writable_schema=ON", rename), (draw(st.binary(max_size=12)),))
    statement = draw(
        st.sampled_from(
            [
                f"DROP TABLE {table}",
                f"ALTER TABLE {table} RENAME TO {table}_old",
                f"DROP INDEX IF EXISTS {draw(st.sampled_from(['parents', 'names', 'block_ino']))}",
                f"CREATE VIEW v_{table} AS SELECT * FROM {table}",
                "CREATE TABLE extra_copy AS SELECT * FROM extra",
                "UPDATE inode SET parent = ino",  # every inode its own parent: a cycle
                "UPDATE inode SET parent = 3 WHERE ino = 2",  # a directory under its child
            ]
        )
    )
    return Mutation((statement,))


def mutated(edits: list[Mutation]) -> bytes:
    """The seed with ``edits`` applied (those SQLite itself refuses are left out)."""
    with tempfile.TemporaryDirectory(prefix="zgrid-fuzz-sql-") as scratch:
        path = Path(scratch) / "mutated.fl"
        path.write_bytes(SEED)
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=OFF")
            db.execute("BEGIN")
            for edit in edits:
                with contextlib.suppress(sqlite3.Error, OverflowError):
                    *before, last = edit.sql
                    for statement in before:
                        db.execute(statement)
                    db.execute(last, edit.args)
            db.execute("COMMIT")
        finally:
            db.close()
        return path.read_bytes()


def test_the_seed_is_a_valid_flist_and_matches_its_writer(tmp_path: Path) -> None:
    """The mutations start from a file that passes every check (and unpacks: one_input)."""
    with FlistReader(FLIST_CORPUS / "valid-small.fl") as reader:
        tree = check_tree(reader, allow_devices=False)
    assert [path for path, _ in tree.entries] == [
        "",
        "etc",
        "run",
        "etc/hostname",
        "etc/alias",
        "etc/link",
        "run/pipe",
    ]
    write_seed(tmp_path / "seed.fl")
    assert (tmp_path / "seed.fl").read_bytes() == SEED
    one_input(SEED)


def flipped(rng: random.Random) -> bytes:
    """The seed with a few bytes changed anywhere in it, as a fuzzer's mutator does (drawn
    from ``rng``: hypothesis's own integers favour small positions, the file's header)."""
    data = bytearray(SEED)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        if rng.random() < 0.5:
            data[at] ^= 1 << rng.randrange(8)
        else:
            data[at] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    if rng.random() < 0.05:
        del data[rng.randrange(len(data)) :]
    return bytes(data)


def test_byte_flips_in_the_sqlite_file_raise_only_flist_errors() -> None:
    @fuzz_settings(150)
    @given(rng=st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        one_input(flipped(rng))
        count("flist-bytes")

    keep_running(run)


def test_sql_mutations_raise_only_flist_errors() -> None:
    @fuzz_settings(150)
    @given(edits=st.lists(mutations(), min_size=1, max_size=4))
    def run(edits: list[Mutation]) -> None:
        one_input(mutated(edits))
        count("flist-sql")

    keep_running(run)


@pytest.mark.parametrize("name", sorted(path.name for path in FLIST_CORPUS.iterdir()))
def test_the_regression_corpus_raises_only_flist_errors(name: str) -> None:
    one_input((FLIST_CORPUS / name).read_bytes())
    count("flist-corpus")


def test_atheris_finds_no_failing_input(tmp_path: Path) -> None:
    inputs = run_atheris("flist", seconds=fuzz_seconds() or SHORT_ATHERIS_SECONDS, work=tmp_path)
    count("flist-atheris", inputs)
    assert inputs > 0

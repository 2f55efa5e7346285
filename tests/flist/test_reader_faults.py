"""Malformed .fl files that made the reader, the checks or the hub's ingest raise something
else than the flist package's errors: each is a FormatError, one `error:` line at the CLI
and a 400 at the hub."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.flist.conftest import HubProcess, Twin
from tests.flist.test_hostile import Edit, base_flist
from tests.flist.test_hub import error_of, signed_put
from tests.processes import run_zgrid
from zgrid.cli import main
from zgrid.flist import FlistError, FlistReader, Inode, check_tree
from zgrid.flist.hub.ingest import point_at_hub

CORPUS = Path(__file__).parents[1] / "fuzz" / "corpus" / "flist"
DIR = stat.S_IFDIR | 0o755


def non_utf8_table_name(db: sqlite3.Connection) -> None:
    """A table named b"t\\xff": SQLite's message about the schema quotes the name, and
    Python's sqlite3 failed decoding that message (UnicodeDecodeError)."""
    db.execute("CREATE TABLE t (a)")
    db.execute("PRAGMA writable_schema=ON")
    db.execute(
        "UPDATE sqlite_master SET name = CAST(X'74ff' AS TEXT), tbl_name = CAST(X'74ff' AS TEXT)"
        " WHERE name = 't'"
    )


def set_inode(ino: int, **columns: int) -> Edit:
    assignments = ", ".join(f"{column} = {value}" for column, value in columns.items())
    return lambda db: db.execute(f"UPDATE inode SET {assignments} WHERE ino = {ino}")


# case -> (edit of the base flist, what the error says); inode 1 is "/", 2 "etc", 3 "etc/passwd"
EDITS: dict[str, tuple[Edit, str]] = {
    "table name not UTF-8": (non_utf8_table_name, "names are not UTF-8"),
    # stat.S_ISDIR and stat.S_IFMT overflow (OverflowError) beyond a C mode_t.
    "root mode -1": (set_inode(1, mode=-1), "/: mode -1 is not a file type"),
    "root mode 2^32": (set_inode(1, mode=1 << 32), "/: mode 40000000000 is not a file type"),
    "root mode 2^32 + a directory": (
        set_inode(1, mode=(1 << 32) + DIR),
        "/: mode 40000040755 is not a file type",
    ),
    "child mode -1": (set_inode(3, mode=-1), "etc/passwd: mode -1 is not a file type"),
    "child mode 2^32 + a directory": (
        set_inode(2, mode=(1 << 32) + DIR),
        "etc: mode 40000040755 is not a file type",
    ),
    # The root's owner went unchecked to chown (OverflowError) once the tree was unpacked.
    "root owner -5": (set_inode(1, uid=-5), "/: owner -5:0 is out of range"),
    "root owner 2^40": (set_inode(1, gid=1 << 40), "/: owner 0:1099511627776 is out of range"),
}
# case -> (a file of the fuzz corpus, what the error says)
FILES: dict[str, tuple[str, str]] = {
    # Byte flips in the schema: SQLite's message quotes bytes that are not UTF-8.
    "schema bytes not UTF-8": ("schema-not-utf8.fl", "names are not UTF-8"),
    # A corrupt record of the schema: SQLite reports it is out of memory (MemoryError).
    "corrupt record": ("corrupt-record-nomem.fl", "a corrupt record"),
}
CASES = sorted([*EDITS, *FILES])


def faulty_flist(directory: Path, case: str, *, blocks_url: str | None = None) -> Path:
    """The flist of ``case`` in ``directory`` (its blocks routed to ``blocks_url``, if given,
    before it is damaged)."""
    directory.mkdir(parents=True, exist_ok=True)
    flist = directory / "faulty.fl"
    if case in FILES:
        shutil.copyfile(CORPUS / FILES[case][0], flist)
        return flist
    base_flist(flist, directory / "store")
    if blocks_url is not None:
        point_at_hub(flist, blocks_url)
    db = sqlite3.connect(flist)
    EDITS[case][0](db)
    db.commit()
    db.close()
    return flist


def message_of(case: str) -> str:
    return EDITS[case][1] if case in EDITS else FILES[case][1]


@pytest.mark.parametrize("case", CASES)
def test_the_reader_and_the_checks_raise_a_format_error(tmp_path: Path, case: str) -> None:
    flist = faulty_flist(tmp_path, case)
    with pytest.raises(FlistError, match=message_of(case)), FlistReader(flist) as reader:
        check_tree(reader, allow_devices=True, allow_setuid=True)


@pytest.mark.parametrize("case", CASES)
def test_every_command_reading_it_prints_one_error_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flist = faulty_flist(tmp_path, case)
    target = tmp_path / "out"
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    store = f"dir://{tmp_path / 'store'}"  # the corpus files route nowhere useful
    for argv in (
        ["flist", "inspect", str(flist)],
        ["flist", "unpack", str(flist), str(target), "--store", store],
        ["flist", "mount", str(flist), str(mountpoint), "--store", store],
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
        assert message_of(case) in err, (argv, err)
    assert not target.exists()
    assert list(mountpoint.iterdir()) == []


def test_the_console_script_prints_one_line_for_a_corrupt_record(tmp_path: Path) -> None:
    flist = faulty_flist(tmp_path, "corrupt record")
    result = run_zgrid("flist", "unpack", str(flist), str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", CASES)
def test_the_hub_refuses_the_upload_with_400(
    tmp_path: Path, case: str, hub: HubProcess, new_twin: Callable[[], Twin]
) -> None:
    twin = new_twin()
    flist = faulty_flist(tmp_path, case, blocks_url=f"{hub.url}/blocks")
    response = signed_put(
        hub,
        f"/flists/{twin.twin_id}/faulty.fl",
        flist.read_bytes(),
        identity=twin.identity,
        twin_id=twin.twin_id,
    )
    assert response.status_code == 400, response.text
    assert message_of(case) in error_of(response, "bad_flist")


@pytest.mark.parametrize("mode", [-1, 1 << 32, (1 << 32) + DIR, -(1 << 63), (1 << 63) - 1])
def test_the_type_of_an_inode_takes_any_64_bit_mode(mode: int) -> None:
    inode = Inode(
        ino=1, parent=0, name="/", size=0, uid=0, gid=0, mode=mode, rdev=0, ctime=0, mtime=0
    )
    assert inode.kind == mode & 0o170000
    assert inode.is_dir == (inode.kind == stat.S_IFDIR)
    assert not (inode.is_file and inode.is_symlink)

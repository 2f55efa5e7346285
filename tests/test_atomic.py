"""Atomic writes: the new bytes or the old ones, the exact mode, no temporary left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zgrid.atomic import replace_durably, temporary_beside, write_atomic


def test_write_replaces_with_the_exact_mode(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    target.chmod(0o644)
    old_umask = os.umask(0o077)
    try:
        write_atomic(target, b"new", mode=0o640)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_rename_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "child").write_text("keep")
    with pytest.raises(OSError):
        write_atomic(target, b"secret")
    assert (target / "child").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]


def test_a_missing_directory_fails_without_leftovers(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "file", b"x")
    assert list(tmp_path.iterdir()) == []


def test_replace_durably_moves_a_finished_temporary(tmp_path: Path) -> None:
    target = tmp_path / "block"
    temporary = temporary_beside(target)
    assert temporary.parent == tmp_path and temporary != temporary_beside(target)
    temporary.write_bytes(b"data")
    replace_durably(temporary, target)
    assert target.read_bytes() == b"data" and not temporary.exists()


def test_replace_durably_removes_the_temporary_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "in-the-way"
    target.mkdir()
    (target / "child").write_text("keep")
    temporary = temporary_beside(target)
    temporary.write_bytes(b"data")
    with pytest.raises(OSError):
        replace_durably(temporary, target)
    assert not temporary.exists() and (target / "child").read_text() == "keep"

"""The node's key on disk: made once, kept private, refused when damaged or open to others."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from zgrid.node.errors import NodeConfigError
from zgrid.node.keys import identity_dir, load_or_create_node_identity


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    data = tmp_path / "node"
    first = load_or_create_node_identity(data)
    key_file = data / "identity" / "identity.json"
    assert identity_dir(data) == data / "identity"
    assert _mode(key_file) == 0o600
    assert _mode(data / "identity") == 0o700
    assert json.loads(key_file.read_text())["address"] == first.address
    again = load_or_create_node_identity(data)
    assert again.address == first.address
    assert again.public_key == first.public_key


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create_node_identity(tmp_path)
    key_file = tmp_path / "identity" / "identity.json"
    key_file.chmod(0o644)
    with pytest.raises(NodeConfigError) as caught:
        load_or_create_node_identity(tmp_path)
    assert str(caught.value) == (
        f"the node's key file {key_file} has mode 0644, open to other users; "
        f"it must be 0600 (`chmod 600 {key_file}`)"
    )


def test_a_key_directory_others_can_enter_is_refused(tmp_path: Path) -> None:
    load_or_create_node_identity(tmp_path)
    (tmp_path / "identity").chmod(0o755)
    with pytest.raises(NodeConfigError, match=r"key directory .* has mode 0755.*chmod 700"):
        load_or_create_node_identity(tmp_path)


def test_a_damaged_key_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    original = load_or_create_node_identity(tmp_path)
    key_file = tmp_path / "identity" / "identity.json"
    document = json.loads(key_file.read_text())
    document["address"] = "ab" * 32
    key_file.write_text(json.dumps(document))
    with pytest.raises(NodeConfigError) as caught:
        load_or_create_node_identity(tmp_path)
    message = str(caught.value)
    assert f"its mnemonic derives to {original.address}" in message
    assert f"Restore {key_file} from a backup" in message

    key_file.write_text("{ not json")
    with pytest.raises(NodeConfigError, match="is not a zgrid identity file"):
        load_or_create_node_identity(tmp_path)


def test_a_symbolic_link_is_not_a_key_file(tmp_path: Path) -> None:
    (tmp_path / "identity").mkdir(mode=0o700)
    (tmp_path / "elsewhere.json").write_text("{}")
    os.symlink(tmp_path / "elsewhere.json", tmp_path / "identity" / "identity.json")
    with pytest.raises(NodeConfigError, match="must be a file holding the node's key"):
        load_or_create_node_identity(tmp_path)


def test_a_data_directory_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NodeConfigError, match=f"cannot make the node's key directory {blocker}"):
        load_or_create_node_identity(blocker)

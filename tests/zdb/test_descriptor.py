"""The namespace descriptor: a refused NSSET changes nothing, a damaged file is never defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.zdb.conftest import ZdbProcess
from tests.zdb.helpers import RawSocket, ReplyError
from zgrid.zdb.errors import StorageError
from zgrid.zdb.files import SyncPolicy
from zgrid.zdb.formats import NAMESPACE_FILE, NamespaceDescriptor
from zgrid.zdb.namespace import Namespace

PRIVATE = ReplyError("Namespace protected and private")


def _protected(server: ZdbProcess, name: str, password: bytes) -> None:
    with RawSocket(server.port) as sock:
        assert sock.call("NSNEW", name) == b"OK"
        assert sock.call("NSSET", name, "password", password) == b"OK"
        assert sock.call("NSSET", name, "public", "0") == b"OK"
        assert sock.call("SELECT", name, password) == b"OK"
        assert sock.call("SET", "secret-key", "secret-value") == b"secret-key"


def _still_protected(server: ZdbProcess, name: str, password: bytes) -> None:
    with RawSocket(server.port) as sock:
        assert sock.call("SELECT", name) == PRIVATE
        assert sock.call("SELECT", name, b"wrong") == ReplyError("Access denied")
        assert sock.call("SELECT", name, password) == b"OK"
        assert sock.call("GET", "secret-key") == b"secret-value"


@pytest.mark.parametrize("maxsize", [str(1 << 64), str(10**30)])
def test_a_refused_maxsize_keeps_the_password_across_a_restart(
    zdb: ZdbProcess, maxsize: str
) -> None:
    _protected(zdb, "vault", b"hunter2")
    with RawSocket(zdb.port) as sock:
        assert sock.call("NSSET", "vault", "maxsize", maxsize) == ReplyError("Invalid value")
        assert sock.call("NSSET", "vault", "maxsize", str((1 << 64) - 1)) == b"OK"
    assert (zdb.index / "vault" / NAMESPACE_FILE).stat().st_size > 15
    zdb.restart()
    _still_protected(zdb, "vault", b"hunter2")


def test_a_password_that_is_not_utf8_is_kept_byte_for_byte(zdb: ZdbProcess) -> None:
    _protected(zdb, "vault", b"pw")
    with RawSocket(zdb.port) as sock:
        assert sock.call("NSSET", "vault", "password", b"\xff\xfe-pw") == b"OK"
    zdb.restart()
    _still_protected(zdb, "vault", b"\xff\xfe-pw")


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda raw: b"",
    "short-header": lambda raw: raw[:10],
    "cut-password": lambda raw: raw[:-3],
    "other-version": lambda raw: b"\x09" + raw[1:],
}


def test_a_damaged_descriptor_is_a_load_error_and_the_namespace_is_not_served(
    zdb: ZdbProcess,
) -> None:
    for name in DAMAGE:
        _protected(zdb, name, b"hunter2")
    _protected(zdb, "other", b"pw")
    zdb.stop()
    for name, damage in DAMAGE.items():
        path = zdb.index / name / NAMESPACE_FILE
        path.write_bytes(damage(path.read_bytes()))
    zdb.start()
    with RawSocket(zdb.port) as sock:
        for name in DAMAGE:
            assert sock.call("SELECT", name) == ReplyError("Namespace not found"), name
            assert sock.call("NSNEW", name) == ReplyError("This namespace is not available")
            assert name.encode() not in sock.call("NSLIST")  # type: ignore[operator]
        assert sock.call("SELECT", "other", "pw") == b"OK"  # the others are served
        assert sock.call("GET", "secret-key") == b"secret-value"
    log = zdb.log.read_text()
    for name in DAMAGE:
        assert f"namespace {name} not served" in log
    assert "Traceback" not in log


def test_loading_a_short_descriptor_raises(tmp_path: Path) -> None:
    namespace = Namespace(
        "vault",
        data_root=tmp_path / "data",
        index_root=tmp_path / "index",
        mode=0,
        datasize=1 << 20,
        policy=SyncPolicy(),
    )
    (tmp_path / "index" / "vault").mkdir(parents=True)
    (tmp_path / "index" / "vault" / NAMESPACE_FILE).write_bytes(b"\x01\x00")
    with pytest.raises(StorageError, match="shorter than its header"):
        namespace.load()


def test_descriptor_fields_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        NamespaceDescriptor(name="n", maxsize=1 << 64).pack()
    with pytest.raises(ValueError, match="password"):
        NamespaceDescriptor(name="n", password="p" * 256).pack()
    with pytest.raises(ValueError, match="name"):
        NamespaceDescriptor(name="n" * 256).pack()
    raw = NamespaceDescriptor(name="n\udcff", password="\udcfe").pack()
    assert NamespaceDescriptor.unpack(raw) == NamespaceDescriptor(name="n\udcff", password="\udcfe")

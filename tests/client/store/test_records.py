"""The deployer's records: sealed JSON per network, atomic under kill -9, bounded."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.client.store.conftest import MakeStore
from zgrid.client import Store, StoreError
from zgrid.client.store import MAX_RECORD_BYTES

ROOT = Path(__file__).resolve().parents[3]


def test_put_read_list_drop(key_store: MakeStore, home: Path) -> None:
    store = key_store()
    assert store.record("devnet", "web") is None
    assert store.records("devnet") == []
    store.put_record("devnet", "web", {"contracts": [1, 2], "state": "deploying"})
    store.put_record("devnet", "db", {"contracts": [3]})
    store.put_record("main", "web", {"contracts": [9]})
    store.put_record("devnet", "web", {"contracts": [1, 2], "state": "ok"})
    again = key_store()
    assert again.record("devnet", "web") == {"contracts": [1, 2], "state": "ok"}
    assert again.records("devnet") == [{"contracts": [3]}, {"contracts": [1, 2], "state": "ok"}]
    assert Store(home).record_names("devnet") == ["db", "web"]  # no key needed
    assert again.drop_record("devnet", "web") is True
    assert again.drop_record("devnet", "web") is False
    assert again.records("devnet") == [{"contracts": [3]}]
    assert again.records("main") == [{"contracts": [9]}]


@pytest.mark.parametrize("name", ["", "Web", "-web", "a" * 64, "w/x", "..", "w.json"])
def test_bad_record_names(key_store: MakeStore, name: str) -> None:
    with pytest.raises(StoreError, match="is not a valid record name"):
        key_store().put_record("devnet", name, {})
    assert len("a" * 63) == 63
    key_store().put_record("devnet", "a" * 63, {})


def test_bad_documents(key_store: MakeStore) -> None:
    store = key_store()
    with pytest.raises(StoreError, match="must be a JSON object"):
        store.put_record("devnet", "x", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="is not JSON"):
        store.put_record("devnet", "x", {"when": object()})
    with pytest.raises(StoreError, match="is not JSON"):
        store.put_record("devnet", "x", {"cost": float("nan")})
    with pytest.raises(StoreError, match=f"more than {MAX_RECORD_BYTES}"):
        store.put_record("devnet", "x", {"blob": "x" * MAX_RECORD_BYTES})
    assert store.record("devnet", "x") is None
    store.put_record("devnet", "x", {"blob": "x" * (MAX_RECORD_BYTES - 100)})
    assert len(key_store().record("devnet", "x")["blob"]) == MAX_RECORD_BYTES - 100  # type: ignore[index]


def test_a_record_moved_to_another_network_is_refused(key_store: MakeStore, home: Path) -> None:
    key_store().put_record("devnet", "web", {"contracts": [1]})
    (home / "records" / "main").mkdir()
    shutil.copy(home / "records" / "devnet" / "web.json", home / "records" / "main" / "web.json")
    with pytest.raises(StoreError, match="belongs elsewhere: its network is not 'main'"):
        key_store().record("main", "web")


_WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from zgrid.client import Store, Unlocker
store = Store(Path(sys.argv[2]), unlocker=Unlocker(key_file=Path(sys.argv[3])))
i = 0
while True:
    i += 1
    store.put_record("devnet", "web", {"version": i, "blob": ("%08d" % i) * 20000})
    print(i, flush=True)
"""


def test_a_record_is_old_or_new_after_kill_9(
    key_store: MakeStore, home: Path, key_file: Path
) -> None:
    key_store().put_record("devnet", "web", {"version": 0, "blob": f"{0:08d}" * 20000})
    seen = 0
    for delay in (0.05, 0.13, 0.21, 0.3, 0.42):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(ROOT), str(home), str(key_file)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert writer.stdout is not None
            first = writer.stdout.readline()  # it writes: kill it a moment later, mid-write
            assert first, "the writer died before writing"
            time.sleep(delay)
            os.killpg(writer.pid, signal.SIGKILL)
            printed = [first, *writer.stdout.read().splitlines()]
        finally:
            if writer.poll() is None:
                os.killpg(writer.pid, signal.SIGKILL)
            writer.wait()
        assert writer.returncode == -signal.SIGKILL
        last_done = int(printed[-1])
        document = key_store().record("devnet", "web")
        assert document is not None
        version = document["version"]
        # What the killed writer finished, or the one it was writing when killed.
        assert version in (last_done, last_done + 1)
        assert document["blob"] == f"{version:08d}" * 20000
        seen += 1
    assert seen == 5
    # The temporaries killed writers left are swept by the next write.
    key_store().put_record("devnet", "web", {"version": -1, "blob": ""})
    assert [p.name for p in (home / "records" / "devnet").iterdir()] == ["web.json"]

"""The node's local state: durable intent, cursor that only moves forward, records that only gain fields."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from zgrid.node.errors import NodeConfigError
from zgrid.node.state import ContractRecord, LocalState, WorkloadRecord


def test_contracts_and_workloads_survive_a_reopen(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    with state.transaction():
        state.put_contract(ContractRecord(id=4, twin_id=2, version=1, status="provisioning"))
        state.put_workload(WorkloadRecord(contract_id=4, name="web", type="zmachine", twin_id=2))
    state.close()
    again = LocalState(tmp_path / "state.db")
    record = again.contract(4)
    assert record is not None and record.status == "provisioning" and record.version == 1
    [workload] = again.workloads(4)
    assert workload.id == "2-4-web" and workload.intent == "present" and workload.state == "init"
    again.forget_contract(4)
    assert again.contract(4) is None and again.workloads() == []


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    with pytest.raises(RuntimeError), state.transaction():
        state.put_contract(ContractRecord(id=1, twin_id=1))
        raise RuntimeError("crash halfway")
    assert state.contracts() == []


def test_the_cursor_never_moves_back(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    assert state.cursor == 0
    state.set_cursor(10)
    state.set_cursor(7)
    assert state.cursor == 10


def test_records_from_another_version_still_load(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    LocalState(path).close()
    with sqlite3.connect(path) as db:
        document = {"id": 9, "twin_id": 3, "a_field_of_a_newer_node": True}
        db.execute("INSERT INTO contracts VALUES (?, ?)", (9, json.dumps(document)))
    record = LocalState(path).contract(9)
    assert record is not None and record.version == -1 and record.status == "new"


def test_an_unusable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(NodeConfigError, match="cannot open the node's state"):
        LocalState(path)

"""The node's local state in SQLite: the event cursor, each contract's deployment, and each
workload's intent and last result.

Intent is written (and synced) before any work starts, so a node killed halfway knows on
restart what it was doing and finishes it. Records are JSON documents keyed by id: a
newer node adds fields, an older record simply lacks them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from zgrid.node.errors import NodeConfigError

__all__ = ["ContractRecord", "Intent", "LocalState", "WorkloadRecord"]

Intent = Literal["present", "paused", "absent"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (id INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workloads (
    contract_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (contract_id, name)
);
"""


def _from_dict(cls: type[Any], document: dict[str, Any]) -> Any:
    # Fields a newer node wrote are ignored; fields an older record lacks take defaults.
    known = {item.name for item in fields(cls)}
    return cls(**{key: value for key, value in document.items() if key in known})


@dataclass
class ContractRecord:
    """What the node knows of one of its contracts."""

    id: int
    twin_id: int
    version: int = -1  # the deployment version being (or last) provisioned; -1: none yet
    deployment_hash: str = ""
    deployment: dict[str, Any] | None = None  # the unsealed deployment, once checked
    status: str = "new"  # new | waiting | provisioning | done | error | deleted
    message: str = ""
    paused: bool = False
    reported_version: int = -1  # the version whose results the ledger has
    reported_digest: str = ""  # digest of the results last reported (no repeats)
    used: dict[str, int] = field(default_factory=dict)  # capacity reported for it
    provision_seconds: float = 0.0  # from reading this version to having provisioned it


@dataclass
class WorkloadRecord:
    """One workload's intent and its last result."""

    contract_id: int
    name: str
    type: str
    twin_id: int
    version: int = 0
    intent: Intent = "present"
    state: str = "init"  # init | ok | error | paused | deleted
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    created: int = 0

    @property
    def id(self) -> str:
        return f"{self.twin_id}-{self.contract_id}-{self.name}"


class LocalState:
    """One SQLite file in the node's data directory; every write is one durable transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise NodeConfigError(f"cannot open the node's state {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them land, or none."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- meta ----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def cursor(self) -> int:
        """The ledger height the event stream resumes from."""
        value = self.get_meta("cursor")
        return int(value) if value else 0

    def set_cursor(self, height: int) -> None:
        if height > self.cursor:
            self.set_meta("cursor", str(height))

    # -- contracts -----------------------------------------------------------------------------

    def contract(self, contract_id: int) -> ContractRecord | None:
        row = self._db.execute(
            "SELECT record FROM contracts WHERE id = ?", (contract_id,)
        ).fetchone()
        return None if row is None else _from_dict(ContractRecord, json.loads(row[0]))

    def contracts(self) -> list[ContractRecord]:
        rows = self._db.execute("SELECT record FROM contracts ORDER BY id").fetchall()
        return [_from_dict(ContractRecord, json.loads(row[0])) for row in rows]

    def put_contract(self, record: ContractRecord) -> None:
        self._db.execute(
            "INSERT INTO contracts (id, record) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            (record.id, json.dumps(asdict(record), sort_keys=True)),
        )

    def forget_contract(self, contract_id: int) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM workloads WHERE contract_id = ?", (contract_id,))
            self._db.execute("DELETE FROM contracts WHERE id = ?", (contract_id,))

    # -- workloads -----------------------------------------------------------------------------

    def workloads(self, contract_id: int | None = None) -> list[WorkloadRecord]:
        if contract_id is None:
            rows = self._db.execute(
                "SELECT record FROM workloads ORDER BY contract_id, name"
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT record FROM workloads WHERE contract_id = ? ORDER BY name",
                (contract_id,),
            ).fetchall()
        return [_from_dict(WorkloadRecord, json.loads(row[0])) for row in rows]

    def workload(self, contract_id: int, name: str) -> WorkloadRecord | None:
        row = self._db.execute(
            "SELECT record FROM workloads WHERE contract_id = ? AND name = ?",
            (contract_id, name),
        ).fetchone()
        return None if row is None else _from_dict(WorkloadRecord, json.loads(row[0]))

    def put_workload(self, record: WorkloadRecord) -> None:
        self._db.execute(
            "INSERT INTO workloads (contract_id, name, record) VALUES (?, ?, ?) "
            "ON CONFLICT (contract_id, name) DO UPDATE SET record = excluded.record",
            (record.contract_id, record.name, json.dumps(asdict(record), sort_keys=True)),
        )

    def drop_workload(self, contract_id: int, name: str) -> None:
        self._db.execute(
            "DELETE FROM workloads WHERE contract_id = ? AND name = ?", (contract_id, name)
        )

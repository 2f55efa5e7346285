"""What a node runs, read from its local state (``zgrid node status``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zgrid.node.errors import NodeConfigError
from zgrid.node.reports import deployment_state
from zgrid.node.state import LocalState

__all__ = ["node_status"]

_SECRET_KEYS = frozenset({"password"})


def _public(data: Any) -> Any:
    """Result data without secrets: status output may be shared in a bug report."""
    if isinstance(data, dict):
        return {k: ("***" if k in _SECRET_KEYS else _public(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_public(item) for item in data]
    return data


def node_status(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "state.db"
    if not path.is_file():
        raise NodeConfigError(
            f"{data_dir} holds no node state (no {path.name}); is it a node's --data?"
        )
    state = LocalState(path)
    try:
        contracts = []
        for record in state.contracts():
            workloads = state.workloads(record.id)
            contracts.append(
                {
                    "id": record.id,
                    "twin_id": record.twin_id,
                    "version": record.version,
                    "state": deployment_state(record, workloads),
                    "status": record.status,
                    "message": record.message,
                    "paused": record.paused,
                    "workloads": [
                        {
                            "name": w.name,
                            "id": w.id,
                            "type": w.type,
                            "version": w.version,
                            "state": w.state,
                            "message": w.message,
                            "data": _public(w.data),
                        }
                        for w in workloads
                        if w.intent != "absent"
                    ],
                }
            )
        return {"cursor": state.cursor, "contracts": contracts}
    finally:
        state.close()

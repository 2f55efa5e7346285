"""What version N+1 of a deployment may change from version N, as pure functions.

Rules (as on the ThreeFold Grid node): the version goes up by exactly one; the
twin and contract stay; a workload keeps its type; only network, volume, zmount
and zdb may change their data in place; a workload that changes, or is new,
carries the new deployment version, and one that does not change keeps its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from zgrid.types.deployment import Deployment
from zgrid.types.errors import UpdateRefused
from zgrid.types.workload import Workload

__all__ = ["UpdatePlan", "same_workload", "validate_update"]


@dataclass(frozen=True)
class UpdatePlan:
    """Workload names by what the update does to them."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]


def _content(workload: Workload) -> tuple[object, ...]:
    return (workload.data, workload.metadata, workload.description)


def same_workload(a: Workload, b: Workload) -> bool:
    """What an update counts as unchanged: same type, data, metadata and description."""
    return a.type == b.type and _content(a) == _content(b)


def validate_update(current: Deployment, proposed: Deployment) -> UpdatePlan:
    """Check ``proposed`` may replace ``current``; return what changes or raise UpdateRefused."""
    problems: list[tuple[str, str]] = []
    expected_version = current.version + 1
    if proposed.version != expected_version:
        problems.append(
            (
                "version",
                f"must be {expected_version} (current version {current.version} + 1), "
                f"got {proposed.version}",
            )
        )
    if proposed.twin_id != current.twin_id:
        problems.append(("twin_id", f"cannot change from {current.twin_id} to {proposed.twin_id}"))
    if current.contract_id and proposed.contract_id not in (0, current.contract_id):
        problems.append(
            ("contract_id", f"cannot change from {current.contract_id} to {proposed.contract_id}")
        )

    old = {workload.name: workload for workload in current.workloads}
    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for index, workload in enumerate(proposed.workloads):
        where = f"workloads[{index}]"
        before = old.get(workload.name)
        if before is None:
            added.append(workload.name)
            if workload.version != proposed.version:
                problems.append(
                    (f"{where}.version", f"a new workload must have version {proposed.version}")
                )
            continue
        if before.type != workload.type:
            problems.append(
                (f"{where}.type", f"cannot change from {before.type} to {workload.type}")
            )
            continue
        if _content(before) == _content(workload):
            unchanged.append(workload.name)
            if workload.version != before.version:
                problems.append(
                    (
                        f"{where}.version",
                        f"unchanged workload must keep version {before.version}, "
                        f"got {workload.version}",
                    )
                )
            continue
        updated.append(workload.name)
        if before.data != workload.data and not workload.data.DATA_UPDATABLE:
            problems.append(
                (f"{where}.data", f"a {workload.type} workload cannot change its data in an update")
            )
        if workload.version != proposed.version:
            problems.append(
                (
                    f"{where}.version",
                    f"a changed workload must have version {proposed.version}, "
                    f"got {workload.version}",
                )
            )
    if problems:
        raise UpdateRefused(problems)
    kept = {workload.name for workload in proposed.workloads}
    removed = [name for name in old if name not in kept]
    return UpdatePlan(
        added=tuple(added),
        updated=tuple(updated),
        removed=tuple(removed),
        unchanged=tuple(unchanged),
    )

"""The update rules: what version N+1 may change from version N."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.factories import deployment_doc, workload_doc
from zgrid.types import GIB, UpdateRefused, parse_deployment, validate_update

CURRENT = deployment_doc(contract_id=7)


def proposal(**overrides: Any) -> dict[str, Any]:
    doc = copy.deepcopy(CURRENT)
    doc["version"] = 1
    doc.update(overrides)
    return doc


def check(doc: dict[str, Any]) -> Any:
    return validate_update(parse_deployment(CURRENT), parse_deployment(doc))


def refused(doc: dict[str, Any]) -> UpdateRefused:
    with pytest.raises(UpdateRefused) as caught:
        check(doc)
    return caught.value


def test_nothing_changed_but_the_version() -> None:
    plan = check(proposal())
    assert plan.added == plan.updated == plan.removed == ()
    assert len(plan.unchanged) == len(CURRENT["workloads"])


@pytest.mark.parametrize("version", [0, 2, 5])
def test_version_must_go_up_by_one(version: int) -> None:
    error = refused(proposal(version=version))
    assert error.field == "version"
    assert f"must be 1 (current version 0 + 1), got {version}" in str(error)


def test_type_change_is_refused() -> None:
    doc = proposal()
    workload_doc(doc, "disk").update(type="volume", version=1)
    error = refused(doc)
    assert error.field == "workloads[0].type"
    assert "cannot change from zmount to volume" in str(error)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("disk", {"size": 20 * GIB}),
        ("vol", {"size": 6 * GIB}),
        ("store", {"size": 30 * GIB, "mode": "seq", "password": "new", "public": True}),
    ],
)
def test_updatable_types_may_change_data(name: str, change: dict[str, Any]) -> None:
    doc = proposal()
    workload_doc(doc, name).update(data=change, version=1)
    plan = check(doc)
    assert plan.updated == (name,)


def test_network_may_change_its_peers() -> None:
    doc = proposal()
    workload_doc(doc, "net")["data"]["peers"] = []
    workload_doc(doc, "net")["version"] = 1
    assert check(doc).updated == ("net",)


@pytest.mark.parametrize("name", ["vm", "pubip", "web", "site"])
def test_other_types_may_not_change_data(name: str) -> None:
    doc = proposal()
    workload = workload_doc(doc, name)
    workload["version"] = 1
    data = workload["data"]
    if name == "vm":
        data["compute_capacity"]["cpu"] = 4
    elif name == "pubip":
        data["v6"] = True
    else:
        data["backends"] = ["http://10.1.3.2:9999"] if name == "web" else ["10.1.3.2:8443"]
    error = refused(doc)
    assert error.field.endswith(".data")
    assert "cannot change its data in an update" in str(error)


def test_description_change_of_a_machine_is_allowed() -> None:
    doc = proposal()
    workload_doc(doc, "vm").update(description="renamed in the dashboard", version=1)
    assert check(doc).updated == ("vm",)


def test_changed_workload_must_carry_the_new_version() -> None:
    doc = proposal()
    workload_doc(doc, "disk")["data"]["size"] = 20 * GIB
    error = refused(doc)
    assert error.field == "workloads[0].version"
    assert "must have version 1" in str(error)


def test_unchanged_workload_keeps_its_version() -> None:
    doc = proposal()
    workload_doc(doc, "disk")["version"] = 1
    error = refused(doc)
    assert "unchanged workload must keep version 0" in str(error)


def test_added_and_removed() -> None:
    doc = proposal()
    doc["workloads"] = [w for w in doc["workloads"] if w["name"] != "site"]
    doc["workloads"].append(
        {"version": 1, "name": "extra", "type": "zmount", "data": {"size": GIB}}
    )
    plan = check(doc)
    assert plan.added == ("extra",)
    assert plan.removed == ("site",)


def test_new_workload_needs_the_new_version() -> None:
    doc = proposal()
    doc["workloads"].append(
        {"version": 0, "name": "extra", "type": "zmount", "data": {"size": GIB}}
    )
    assert "a new workload must have version 1" in str(refused(doc))


@pytest.mark.parametrize(("field", "value"), [("twin_id", 99), ("contract_id", 8)])
def test_owner_and_contract_are_fixed(field: str, value: int) -> None:
    doc = proposal(**{field: value})
    error = refused(doc)
    assert error.field == field


def test_all_problems_reported_together() -> None:
    doc = proposal(version=3)
    workload_doc(doc, "disk")["type"] = "volume"
    error = refused(doc)
    assert [field for field, _ in error.problems] == ["version", "workloads[0].type"]

"""The deployment hash: every hashed field moves it, contract_id/results/signatures do not."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import WG_KEY, WG_PEER_KEY, deployment_doc
from zgrid.identity import Identity
from zgrid.types import parse_deployment, sign_deployment


def _base() -> dict[str, Any]:
    # Versions and weights leave room so that bumping any one number keeps the document valid.
    doc = deployment_doc(version=3)
    for workload in doc["workloads"]:
        workload["version"] = 1
    doc["signature_requirement"]["requests"].append({"twin_id": 12, "required": False, "weight": 2})
    doc["workloads"][3]["data"]["v6"] = True
    return doc


BASE = _base()
BASE_HASH = parse_deployment(BASE).hash()


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _other_valid_value(path: tuple[Any, ...], value: Any) -> Any:
    """A different value that keeps the document valid, chosen by the field it sits in."""
    last = path[-1]
    parent = path[-2] if len(path) > 1 else None
    special: dict[Any, Any] = {
        "type": None,  # changing a type changes the model; covered by the update tests
        "name": "vol" if parent == 0 and path[-3] == "mounts" else "renamed",
        "tls_passthrough": None,  # needs other backends too: see the test below
        "ip": "10.1.3.3",
        "subnet": None,
        "ip_range": None,
        "mountpoint": "/elsewhere",
        "flist": "https://hub.example/other.fl",
        "mode": {"container": "vm", "seq": "user"}.get(value),
        "wireguard_private_key": WG_PEER_KEY,
        "wireguard_public_key": WG_KEY,
        "endpoint": "192.0.2.8:3011",
        "public_ip": "",
        "network": "" if parent == "data" else None,
        "fqdn": "other.example.com",
    }
    if last in special:
        return special[last]
    if parent == "allowed_ips":
        return "10.1.4.0/25"
    if parent == "backends":
        return "http://10.1.3.2:81" if value.startswith("http") else "10.1.3.2:444"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1 if last != "twin_id" or path[0] != "signature_requirement" else None
    if isinstance(value, str):
        return value + "x"
    return None


HASHED_LEAVES = [
    (path, value)
    for path, value in _leaves(BASE)
    if path[0] != "contract_id" and _other_valid_value(path, value) is not None
]


@pytest.mark.parametrize(
    ("path", "value"),
    HASHED_LEAVES,
    ids=lambda p: ".".join(map(str, p)) if isinstance(p, tuple) else "",
)
def test_changing_any_hashed_field_changes_the_hash(path: tuple[Any, ...], value: Any) -> None:
    changed = _set(BASE, path, _other_valid_value(path, value))
    if path[-1] == "name" and path[0] == "workloads":
        # a renamed disk, ip or network must stay referenced by what uses it
        for workload in changed["workloads"]:
            if workload["type"] == "zmachine":
                for mount in workload["data"]["mounts"]:
                    if mount["name"] == value:
                        mount["name"] = "renamed"
                if workload["data"]["network"]["public_ip"] == value:
                    workload["data"]["network"]["public_ip"] = "renamed"
            if workload["type"].startswith("gateway") and workload["data"].get("network") == value:
                workload["data"]["network"] = "renamed"
    assert parse_deployment(changed).hash() != BASE_HASH


def test_switching_tls_passthrough_changes_the_hash() -> None:
    changed = _set(BASE, ("workloads", 7, "data", "tls_passthrough"), False)
    changed = _set(changed, ("workloads", 7, "data", "backends"), ["https://10.1.3.2:443"])
    assert parse_deployment(changed).hash() != BASE_HASH


def test_enough_fields_are_covered() -> None:
    # Every workload type and the envelope contribute leaves; a shrinking list means lost coverage.
    assert len(HASHED_LEAVES) >= 50


def test_adding_removing_or_reordering_workloads_changes_the_hash() -> None:
    fewer = copy.deepcopy(BASE)
    fewer["workloads"] = [w for w in fewer["workloads"] if w["name"] == "store"]
    assert parse_deployment(fewer).hash() != BASE_HASH
    reordered = copy.deepcopy(BASE)
    reordered["workloads"].reverse()
    assert parse_deployment(reordered).hash() != BASE_HASH


def test_contract_id_results_and_signatures_do_not_change_the_hash() -> None:
    with_contract = _set(BASE, ("contract_id",), 42)
    assert parse_deployment(with_contract).hash() == BASE_HASH

    with_results = copy.deepcopy(BASE)
    for workload in with_results["workloads"]:
        workload["result"] = {
            "created": 1700000000,
            "state": "ok",
            "message": "",
            "data": {"ip": "1.2.3.4"},
        }
    assert parse_deployment(with_results).hash() == BASE_HASH

    signed = sign_deployment(parse_deployment(BASE), 11, Identity(bytes(32)))
    assert signed.signature_requirement.signatures
    assert signed.hash() == BASE_HASH


def test_defaults_and_explicit_values_hash_the_same() -> None:
    minimal = {
        "twin_id": 3,
        "signature_requirement": {"requests": [{"twin_id": 3}]},
        "workloads": [{"name": "d", "type": "zmount", "data": {"size": 1}}],
    }
    explicit = {
        "version": 0, "twin_id": 3, "contract_id": 0, "metadata": "", "description": "", "expiration": 0,
        "signature_requirement": {"requests": [{"twin_id": 3, "required": False, "weight": 1}], "weight_required": 1, "signatures": []},
        "workloads": [{"version": 0, "name": "d", "type": "zmount", "data": {"size": 1}, "metadata": "", "description": "", "result": None}],
    }  # fmt: skip
    assert parse_deployment(minimal).hash() == parse_deployment(explicit).hash()


def test_hash_pinned() -> None:
    # Pinned so an accidental change to the canonical form or the models is noticed:
    # every node and client must agree on these bytes.
    doc = {
        "twin_id": 1,
        "signature_requirement": {"requests": [{"twin_id": 1}]},
        "workloads": [{"name": "d", "type": "zmount", "data": {"size": 1024}}],
    }
    payload = parse_deployment(doc).hash_payload()
    assert payload == {
        "version": 0, "twin_id": 1, "metadata": "", "description": "", "expiration": 0,
        "signature_requirement": {"requests": [{"twin_id": 1, "required": False, "weight": 1}], "weight_required": 1},
        "workloads": [{"version": 0, "name": "d", "type": "zmount", "data": {"size": 1024}, "metadata": "", "description": ""}],
    }  # fmt: skip
    canonical = (
        b'{"description":"","expiration":0,"metadata":"",'
        b'"signature_requirement":{"requests":[{"required":false,"twin_id":1,"weight":1}],'
        b'"weight_required":1},"twin_id":1,"version":0,'
        b'"workloads":[{"data":{"size":1024},"description":"","metadata":"","name":"d",'
        b'"type":"zmount","version":0}]}'
    )
    assert parse_deployment(doc).hash() == hashlib.blake2b(canonical, digest_size=32).digest()
    assert parse_deployment(doc).hash_hex().startswith("8804afc84c2a98d6")


@settings(max_examples=50)
@given(
    twin=st.integers(min_value=1, max_value=2**40),
    sizes=st.lists(st.integers(min_value=1, max_value=2**50), min_size=1, max_size=6),
    description=st.text(max_size=40),
    contract=st.integers(min_value=0, max_value=2**40),
)
def test_hash_is_stable_across_json_round_trips(
    twin: int, sizes: list[int], description: str, contract: int
) -> None:
    doc = {
        "twin_id": twin,
        "contract_id": contract,
        "description": description,
        "signature_requirement": {"requests": [{"twin_id": twin}]},
        "workloads": [
            {"name": f"d{i}", "type": "zmount", "data": {"size": s}} for i, s in enumerate(sizes)
        ],
    }
    deployment = parse_deployment(doc)
    again = parse_deployment(deployment.to_json_bytes())
    assert again == deployment
    assert again.hash() == deployment.hash()
    assert parse_deployment(dict(reversed(list(doc.items())))).hash() == deployment.hash()
    assert parse_deployment(_set(doc, ("contract_id",), contract + 1)).hash() == deployment.hash()

"""The env a zmachine's container gets: its deployment's zdb namespaces, then its own env."""

from __future__ import annotations

from typing import Any

import pytest

from zgrid.node.primitives.base import Provisioning, WorkloadRef
from zgrid.node.primitives.zdbenv import container_environment, env_name
from zgrid.types import Deployment

MiB = 1 << 20
NODE = "201:1111:2222:3333:4444:5555:6666:7777"


def _machine_item(*, planetary: bool = True, env: dict[str, str] | None = None) -> Provisioning:
    doc: dict[str, Any] = {
        "version": 0,
        "twin_id": 7,
        "contract_id": 12,
        "signature_requirement": {
            "requests": [{"twin_id": 7, "required": True, "weight": 1}],
            "weight_required": 1,
            "signatures": [],
        },
        "workloads": [
            {"version": 0, "name": "cache", "type": "zdb", "data": {"size": MiB}},
            {
                "version": 0,
                "name": "my_db2",
                "type": "zdb",
                "data": {"size": MiB, "password": "s3cret", "mode": "seq"},
            },
            {"version": 0, "name": "data", "type": "zmount", "data": {"size": MiB}},
            {
                "version": 0,
                "name": "web",
                "type": "zmachine",
                "data": {
                    "flist": "https://hub.example/busybox.fl",
                    "compute_capacity": {"cpu": 1, "memory": 256 * MiB},
                    "network": {"planetary": planetary},
                    "env": env or {},
                },
            },
        ],
    }
    deployment = Deployment.model_validate(doc)
    return Provisioning(WorkloadRef(7, 12, "web"), deployment.workloads[3], deployment)


def test_every_zdb_of_the_deployment_is_named_with_its_host_port_namespace_and_password() -> None:
    env = container_environment(_machine_item(), (), zdb_port=9900, node_address=NODE)
    assert env == {
        "ZDB_CACHE_HOST": NODE,
        "ZDB_CACHE_PORT": "9900",
        "ZDB_CACHE_NAMESPACE": "7-12-cache",
        "ZDB_MY_DB2_HOST": NODE,
        "ZDB_MY_DB2_PORT": "9900",
        "ZDB_MY_DB2_NAMESPACE": "7-12-my_db2",
        "ZDB_MY_DB2_PASSWORD": "s3cret",
    }


def test_a_machine_without_planetary_has_no_route_so_no_host() -> None:
    env = container_environment(
        _machine_item(planetary=False), (), zdb_port=9900, node_address=NODE
    )
    assert not any(name.endswith("_HOST") for name in env)
    assert env["ZDB_MY_DB2_NAMESPACE"] == "7-12-my_db2" and env["ZDB_CACHE_PORT"] == "9900"


def test_the_machines_own_env_and_then_its_flists_win_over_the_nodes() -> None:
    item = _machine_item(env={"ZDB_CACHE_HOST": "mine", "ONLY_MINE": "1", "BOTH": "machine"})
    image = (("ZDB_MY_DB2_PORT", "1234"), ("BOTH", "flist"), ("PATH", "/bin"))
    env = container_environment(item, image, zdb_port=9900, node_address=NODE)
    assert env["ZDB_CACHE_HOST"] == "mine" and env["ONLY_MINE"] == "1"
    assert env["ZDB_MY_DB2_PORT"] == "1234" and env["PATH"] == "/bin"
    assert env["BOTH"] == "machine"
    assert env["ZDB_CACHE_NAMESPACE"] == "7-12-cache"  # the rest is the node's


def test_without_a_zdb_port_the_node_adds_nothing() -> None:
    env = container_environment(
        _machine_item(env={"A": "1"}), (("B", "2"),), zdb_port=None, node_address=NODE
    )
    assert env == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("name", "expected"), [("db", "DB"), ("my_db2", "MY_DB2"), ("Mixed9Case", "MIXED9CASE")]
)
def test_a_name_is_upper_cased_with_anything_else_an_underscore(name: str, expected: str) -> None:
    assert env_name(name) == expected
    assert env_name("a-b.c d") == "A_B_C_D"


def test_two_zdbs_whose_names_clash_get_no_variables() -> None:
    item = _machine_item()
    clash = item.deployment.workloads[0].model_copy(update={"name": "CACHE"})
    deployment = item.deployment.model_copy(
        update={"workloads": [*item.deployment.workloads, clash]}
    )
    clashing = Provisioning(item.ref, item.workload, deployment)
    env = container_environment(clashing, (), zdb_port=9900, node_address=NODE)
    assert not any(name.startswith("ZDB_CACHE_") for name in env)
    assert env["ZDB_MY_DB2_NAMESPACE"] == "7-12-my_db2"

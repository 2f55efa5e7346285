"""Builders of valid documents that tests change one field at a time: deployments, join tokens."""

from __future__ import annotations

import copy
from typing import Any

from zgrid.chain import SyncChainClient, issue_join_token
from zgrid.types import GIB, MIB

WG_KEY = "SBM0jWtvDDjN1FP3qStSdjD5idN0Ff0ZWJ4g9yGgqGI="
WG_PEER_KEY = "mBq1lYoVb2Jz2ZQpZ8xk3kq9r1vYQ2Jv8a7cL3rT0Ws="


def zmachine_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "flist": "https://hub.example/alpine.fl",
        "size": 2 * GIB,
        "compute_capacity": {"cpu": 2, "memory": 512 * MIB},
        "mounts": [{"name": "disk", "mountpoint": "/data"}],
        "entrypoint": "/sbin/init",
        "env": {"KEY": "value"},
        "network": {
            "interfaces": [{"network": "net", "ip": "10.1.3.2"}],
            "planetary": True,
            "public_ip": "pubip",
        },
        "mode": "container",
    }
    data.update(overrides)
    return data


def network_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ip_range": "10.1.0.0/16",
        "subnet": "10.1.3.0/24",
        "wireguard_private_key": WG_KEY,
        "wireguard_listen_port": 3011,
        "peers": [
            {
                "subnet": "10.1.4.0/24",
                "wireguard_public_key": WG_PEER_KEY,
                "allowed_ips": ["10.1.4.0/24", "100.64.1.4/32"],
                "endpoint": "192.0.2.7:3011",
            }
        ],
    }
    data.update(overrides)
    return data


def deployment_doc(**overrides: Any) -> dict[str, Any]:
    """A deployment using every workload type, valid as it stands."""
    doc: dict[str, Any] = {
        "version": 0,
        "twin_id": 11,
        "contract_id": 0,
        "metadata": '{"project": "demo"}',
        "description": "every workload type",
        "expiration": 0,
        "signature_requirement": {
            "requests": [{"twin_id": 11, "required": True, "weight": 1}],
            "weight_required": 1,
            "signatures": [],
        },
        "workloads": [
            {"version": 0, "name": "disk", "type": "zmount", "data": {"size": 10 * GIB}},
            {"version": 0, "name": "vol", "type": "volume", "data": {"size": 5 * GIB}},
            {"version": 0, "name": "net", "type": "network", "data": network_data()},
            {"version": 0, "name": "pubip", "type": "ip", "data": {"v4": True, "v6": False}},
            {
                "version": 0,
                "name": "store",
                "type": "zdb",
                "data": {"size": 20 * GIB, "mode": "seq", "password": "pw", "public": False},
            },
            {"version": 0, "name": "vm", "type": "zmachine", "data": zmachine_data()},
            {
                "version": 0,
                "name": "web",
                "type": "gateway-name-proxy",
                "data": {"name": "myapp", "backends": ["http://10.1.3.2:8080"], "network": "net"},
            },
            {
                "version": 0,
                "name": "site",
                "type": "gateway-fqdn-proxy",
                "data": {
                    "fqdn": "app.example.com",
                    "tls_passthrough": True,
                    "backends": ["10.1.3.2:443"],
                },
            },
        ],
    }
    doc.update(overrides)
    return copy.deepcopy(doc)


def workload_doc(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(w for w in doc["workloads"] if w["name"] == name)


def join_token(
    farmer: SyncChainClient, farm_id: int, *, node: str = "", valid_for: int = 3600
) -> str:
    """A join token for ``farm_id`` signed by ``farmer`` (its farm's twin), as a node is handed it."""
    identity = farmer.identity
    assert identity is not None
    head = farmer.head()
    token = issue_join_token(
        identity,
        chain_id=head["chain_id"],
        farm_id=farm_id,
        expires=head["timestamp"] + valid_for,
        node=node,
    )
    return token.encode()

"""Spec entries as workloads: names, metadata, and the data the node reads."""

from __future__ import annotations

import shlex
from dataclasses import replace
from types import MappingProxyType

import pytest

from zgrid.client.builder import (
    MAX_NAME_LENGTH,
    base_name,
    deployment_metadata,
    disk_data,
    item_of,
    machine_data,
    name_with_suffix,
    new_deployment,
    new_workload,
    spec_name_of,
    workload_metadata,
    zdb_data,
)
from zgrid.client.errors import InvalidWorkload
from zgrid.client.spec.model import DiskSpec, MachineSpec, ZdbSpec
from zgrid.types import GIB, MIB, ZDB, ZMount, make_workload, parse_deployment

WEB = MachineSpec(name="web", flist="busybox", memory=512 * MIB)


def test_names_are_the_entry_or_entry_and_replica_always_valid_for_the_node() -> None:
    assert base_name("web", 0, single=True) == "web"
    assert base_name("web", 3, single=False) == "web_3"
    assert base_name("my-app.v2", 0, single=True) == "my_app_v2"  # the node takes [A-Za-z0-9_]
    long = "x" * 60
    assert base_name(long, 12, single=False) == "x" * (MAX_NAME_LENGTH - 3) + "_12"
    assert name_with_suffix("web_12", "_g3") == "web_12_g3"
    assert len(name_with_suffix(long, "_g10")) == MAX_NAME_LENGTH
    assert name_with_suffix(long, "_g10").endswith("_g10")
    for name in (base_name(long, 12, single=False), name_with_suffix(long, "_g10")):
        make_workload(name, ZMount(size=GIB))  # a name the types accept


def test_metadata_is_canonical_json_and_is_read_back() -> None:
    assert workload_metadata("machine/web/0") == '{"key":"machine/web/0"}'
    assert deployment_metadata("app") == '{"name":"app"}'
    workload = new_workload("web", disk_data(DiskSpec("d", GIB)), key="disk/d/0", version=2)
    assert workload.version == 2 and item_of(workload) == "disk/d/0"
    for metadata in ("", "not json", "[1]", '{"key": 5}', '{"other":"x"}'):
        assert item_of(make_workload("w", ZMount(size=GIB), metadata=metadata)) is None
    deployment = new_deployment(name="app", twin_id=3, contract_id=9, version=1, workloads=[])
    assert spec_name_of(deployment) == "app"
    assert deployment.contract_id == 9 and deployment.version == 1
    assert parse_deployment(deployment.to_json_bytes()) == deployment


def test_ssh_keys_become_SSH_KEY_one_a_line_over_the_env_value() -> None:
    spec = MachineSpec(
        name="web",
        flist="busybox",
        env=MappingProxyType({"SSH_KEY": "stale", "A": "1"}),
        ssh_keys=("ssh-ed25519 K1 a@b", "ssh-rsa K2 c@d"),
        entrypoint="/bin/sh -c 'echo hi; sleep 5'",
    )
    data = machine_data(spec, "http://hub/flists/1/busybox.fl", [("data", "/data")])
    assert data.env == {"A": "1", "SSH_KEY": "ssh-ed25519 K1 a@b\nssh-rsa K2 c@d"}
    # the node splits the entrypoint with shlex: the spec's text reaches it as written
    assert shlex.split(data.entrypoint) == ["/bin/sh", "-c", "echo hi; sleep 5"]
    assert [(m.name, m.mountpoint) for m in data.mounts] == [("data", "/data")]
    assert data.size == 0 and data.mode == "container"
    vm = machine_data(replace(spec, mode="vm"), "http://hub/flists/1/debian.fl", [])
    assert vm.mode == "vm" and vm.env == data.env


def test_disk_and_zdb_data() -> None:
    assert disk_data(DiskSpec("d", 3 * GIB)) == ZMount(size=3 * GIB)
    zdb = ZdbSpec("z", GIB, mode="seq", public=True)
    assert zdb_data(zdb, "pw") == ZDB(size=GIB, mode="seq", public=True, password="pw")


def test_what_the_node_would_refuse_is_an_invalid_workload_naming_the_entry() -> None:
    with pytest.raises(InvalidWorkload, match=r"machine 'web'.*cpu must be between 1 and 256"):
        machine_data(MachineSpec(name="web", flist="f", cpu=0), "http://h/f", [])
    with pytest.raises(InvalidWorkload, match=r"machine 'web'.*mountpoint must be an absolute"):
        machine_data(WEB, "http://h/f", [("d", "data")])
    with pytest.raises(InvalidWorkload, match=r"disk 'd'"):
        disk_data(DiskSpec("d", 0))
    with pytest.raises(InvalidWorkload, match=r"zdb 'z'"):
        zdb_data(ZdbSpec("z", GIB), "p" * 200)
    machine = machine_data(WEB, "http://h/f", [("missing", "/data")])
    workload = new_workload("web", machine, key="machine/web/0", version=0)
    with pytest.raises(InvalidWorkload, match="no zmount or volume named 'missing'"):
        new_deployment(name="app", twin_id=1, contract_id=0, version=0, workloads=[workload])

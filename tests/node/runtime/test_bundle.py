"""The OCI config built from a ContainerSpec: namespaces, limits, mounts, env, checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from zgrid.node.runtime import BindMount, ContainerSpec
from zgrid.node.runtime.bundle import (
    CPU_PERIOD,
    DEFAULT_PATH,
    PIDS_LIMIT,
    build_config,
    cgroups_path,
    validate_spec,
)

SPEC = ContainerSpec(id="web-1", rootfs=Path("/data/web/root"), args=("httpd", "-f"))


def test_namespaces_root_and_process() -> None:
    config = build_config(SPEC, scope="node-a")
    kinds = [ns["type"] for ns in config["linux"]["namespaces"]]
    assert sorted(kinds) == ["cgroup", "ipc", "mount", "network", "pid", "uts"]
    assert "user" not in kinds
    assert {"type": "network"} in config["linux"]["namespaces"]  # a new one
    assert config["root"] == {"path": "/data/web/root", "readonly": False}
    process = config["process"]
    assert process["args"] == ["httpd", "-f"]
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["cwd"] == "/"
    assert process["terminal"] is False
    assert process["env"] == [f"PATH={DEFAULT_PATH}"]
    assert config["hostname"] == "zmachine"
    caps = process["capabilities"]["bounding"]
    assert "CAP_NET_BIND_SERVICE" in caps and "CAP_CHOWN" in caps
    assert "CAP_SYS_ADMIN" not in caps and "CAP_NET_ADMIN" not in caps
    assert "/proc/kcore" in config["linux"]["maskedPaths"]
    assert "/proc/sys" in config["linux"]["readonlyPaths"]


def test_a_given_netns_is_joined() -> None:
    spec = dataclasses.replace(SPEC, netns=Path("/var/run/netns/zn1"))
    namespaces = build_config(spec, scope="a")["linux"]["namespaces"]
    assert {"type": "network", "path": "/var/run/netns/zn1"} in namespaces


def test_env_keeps_a_given_path_and_order() -> None:
    spec = dataclasses.replace(SPEC, env=(("A", "1"), ("PATH", "/opt/bin"), ("B", "x=y")))
    assert build_config(spec, scope="a")["process"]["env"] == ["A=1", "PATH=/opt/bin", "B=x=y"]
    spec = dataclasses.replace(SPEC, env=(("SSH_KEY", "ssh-ed25519 AAAA"),))
    assert build_config(spec, scope="a")["process"]["env"] == [
        f"PATH={DEFAULT_PATH}",
        "SSH_KEY=ssh-ed25519 AAAA",
    ]


def test_resources_follow_cores_and_memory() -> None:
    spec = dataclasses.replace(SPEC, cpu=3, memory=512 * 1024 * 1024)
    resources = build_config(spec, scope="a")["linux"]["resources"]
    assert resources["cpu"] == {"quota": 3 * CPU_PERIOD, "period": CPU_PERIOD}
    assert resources["memory"] == {"limit": 512 << 20, "swap": 512 << 20}
    assert resources["pids"] == {"limit": PIDS_LIMIT}
    assert resources["devices"][0] == {"allow": False, "access": "rwm"}
    allowed = {(d.get("major"), d.get("minor")) for d in resources["devices"] if d["allow"]}
    assert {(1, 3), (1, 5), (1, 9), (5, 2), (136, None)} <= allowed


def test_cgroup_paths_differ_by_scope_and_id() -> None:
    paths = {cgroups_path(scope, cid) for scope in ("a", "b") for cid in ("x", "y")}
    assert len(paths) == 4
    assert build_config(SPEC, scope="a")["linux"]["cgroupsPath"] == cgroups_path("a", "web-1")
    assert cgroups_path("a", "x").startswith("/zgrid-")
    assert cgroups_path("a", "x") == cgroups_path("a", "x")


def test_kernel_and_bind_mounts() -> None:
    spec = dataclasses.replace(
        SPEC,
        mounts=(
            BindMount(Path("/mnt/disk1"), "/data"),
            BindMount(Path("/etc/zgrid/ro"), "/config", readonly=True),
        ),
    )
    mounts = {m["destination"]: m for m in build_config(spec, scope="a")["mounts"]}
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"} <= set(mounts)
    assert mounts["/dev"]["type"] == "tmpfs"
    assert "ro" in mounts["/sys"]["options"]
    assert mounts["/data"]["type"] == "bind" and mounts["/data"]["source"] == "/mnt/disk1"
    assert "rw" in mounts["/data"]["options"] and "rbind" in mounts["/data"]["options"]
    assert "ro" in mounts["/config"]["options"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "a/b"}, "container id"),
        ({"id": "x" * 65}, "container id"),
        ({"rootfs": Path("relative")}, "rootfs"),
        ({"args": ()}, "entrypoint"),
        ({"args": ("",)}, "entrypoint"),
        ({"env": (("A=B", "1"),)}, "environment variable"),
        ({"cwd": "tmp"}, "working directory"),
        ({"hostname": "bad_name"}, "hostname"),
        ({"cpu": 0}, "cpu"),
        ({"memory": 1024}, "memory"),
        ({"mounts": (BindMount(Path("/x"), "/a/../etc"),)}, "mount target"),
        ({"mounts": (BindMount(Path("x"), "/a"),)}, "mount source"),
        ({"netns": Path("netns")}, "netns"),
    ],
)
def test_bad_specs_are_named(change: dict[str, object], message: str) -> None:
    spec = dataclasses.replace(SPEC, **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        validate_spec(spec)
    with pytest.raises(ValueError, match=message):
        build_config(spec, scope="a")

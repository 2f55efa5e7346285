"""The OCI runtime configuration (a bundle's config.json) for one container, built from its
:class:`ContainerSpec` alone: no file system or process is touched here.

The container gets its own pid, mount, uts, ipc and cgroup namespaces and either a new
network namespace (loopback only) or the one the spec names; root inside is uid 0 without
a user namespace, with Docker's default capabilities; /proc, /dev, /sys are the usual
kernel file systems with runc's masked and read-only paths; the cgroup limits are the
spec's cores (CPU quota) and memory (no swap on top) plus a process count limit.
"""

from __future__ import annotations

import re
from typing import Any

from zgrid.node.naming import unique_name
from zgrid.node.runtime.base import ContainerSpec

__all__ = [
    "CPU_PERIOD",
    "DEFAULT_PATH",
    "PIDS_LIMIT",
    "build_config",
    "cgroup_parent",
    "cgroups_path",
    "validate_spec",
]

OCI_VERSION = "1.0.2-dev"
CPU_PERIOD = 100_000  # microseconds
PIDS_LIMIT = 4096
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MIN_MEMORY = 8 * 1024 * 1024  # below this a container cannot even start its init

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV_NAME = re.compile(r"[^=\0]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

# Docker's default capability set for a container's root.
CAPABILITIES = (
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)

MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)

READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# (type, major, minor) the container may use; runc creates the nodes of the first six.
_DEVICES = (
    ("c", 1, 3),  # null
    ("c", 1, 5),  # zero
    ("c", 1, 7),  # full
    ("c", 1, 8),  # random
    ("c", 1, 9),  # urandom
    ("c", 5, 0),  # tty
    ("c", 5, 1),  # console
    ("c", 5, 2),  # ptmx
    ("c", 136, None),  # pts/*
    ("c", 10, 200),  # net/tun
)


def validate_spec(spec: ContainerSpec) -> None:
    """Raise ValueError naming the first field of ``spec`` that cannot be run."""
    if not _ID.fullmatch(spec.id):
        raise ValueError(
            f"container id {spec.id!r} must be 1 to 64 characters of letters, digits, '_.-'"
        )
    if not spec.rootfs.is_absolute():
        raise ValueError(f"rootfs {str(spec.rootfs)!r} must be an absolute path")
    if not spec.args or not spec.args[0]:
        raise ValueError("the entrypoint (args) is empty")
    if any("\0" in arg for arg in spec.args):
        raise ValueError("an argument of the entrypoint holds a NUL byte")
    for name, value in spec.env:
        if not _ENV_NAME.fullmatch(name) or "\0" in value:
            raise ValueError(f"environment variable name {name!r} is not valid")
    if not spec.cwd.startswith("/"):
        raise ValueError(f"working directory {spec.cwd!r} must be an absolute path")
    if not _HOSTNAME.fullmatch(spec.hostname):
        raise ValueError(f"hostname {spec.hostname!r} is not a valid host name")
    if spec.cpu < 1:
        raise ValueError(f"cpu must be at least 1 core, not {spec.cpu}")
    if spec.memory < MIN_MEMORY:
        raise ValueError(f"memory must be at least {MIN_MEMORY >> 20} MiB, not {spec.memory} B")
    for mount in spec.mounts:
        if not mount.source.is_absolute():
            raise ValueError(f"mount source {str(mount.source)!r} must be an absolute path")
        if not mount.target.startswith("/") or ".." in mount.target.split("/"):
            raise ValueError(f"mount target {mount.target!r} must be an absolute path without '..'")
    if spec.netns is not None and not spec.netns.is_absolute():
        raise ValueError(f"netns {str(spec.netns)!r} must be an absolute path")


def cgroup_parent(scope: str) -> str:
    """The cgroup (relative to each controller's root) holding every container of ``scope``."""
    return "zgrid-" + unique_name("rt", scope, length=18)


def cgroups_path(scope: str, container_id: str) -> str:
    return f"/{cgroup_parent(scope)}/{container_id}"


def _env(spec: ContainerSpec) -> list[str]:
    env = [f"{name}={value}" for name, value in spec.env]
    if not any(name == "PATH" for name, _ in spec.env):
        env.insert(0, f"PATH={DEFAULT_PATH}")
    return env


def _mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    def kernel(dest: str, kind: str, source: str, *options: str) -> dict[str, Any]:
        return {"destination": dest, "type": kind, "source": source, "options": list(options)}

    mounts = [
        kernel("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
        kernel("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
        kernel(
            "/dev/pts",
            "devpts",
            "devpts",
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ),
        kernel("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
        kernel("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        kernel("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
        kernel("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
    ]
    for mount in spec.mounts:
        options = ["rbind", "rprivate", "ro" if mount.readonly else "rw"]
        mounts.append(kernel(mount.target, "bind", str(mount.source), *options))
    return mounts


def _devices() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    rules.append({"allow": True, "type": "c", "access": "m"})  # mknod, not use
    rules.append({"allow": True, "type": "b", "access": "m"})
    for kind, major, minor in _DEVICES:
        rule: dict[str, Any] = {"allow": True, "type": kind, "major": major, "access": "rwm"}
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def build_config(spec: ContainerSpec, *, scope: str) -> dict[str, Any]:
    """The OCI config.json of ``spec`` (validated) for the node ``scope``."""
    validate_spec(spec)
    network: dict[str, str] = {"type": "network"}
    if spec.netns is not None:
        network["path"] = str(spec.netns)
    caps = list(CAPABILITIES)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(spec.args),
            "env": _env(spec),
            "cwd": spec.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": str(spec.rootfs), "readonly": False},
        "hostname": spec.hostname,
        "mounts": _mounts(spec),
        "linux": {
            "cgroupsPath": cgroups_path(scope, spec.id),
            "resources": {
                "devices": _devices(),
                "cpu": {"quota": spec.cpu * CPU_PERIOD, "period": CPU_PERIOD},
                "memory": {"limit": spec.memory, "swap": spec.memory},
                "pids": {"limit": PIDS_LIMIT},
            },
            "namespaces": [
                {"type": "pid"},
                {"type": "mount"},
                {"type": "uts"},
                {"type": "ipc"},
                {"type": "cgroup"},
                network,
            ],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }

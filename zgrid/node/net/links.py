"""Network namespaces, links, addresses, routes and sysctls, as thin typed calls to `ip`.

Every function acts in the calling process's network namespace, or in the named one when
``netns`` is given; state is read from `ip -j` (JSON). Creating what already exists and
deleting what is already gone are not errors, so callers can repeat any step after a
crash. A failure raises :class:`NetworkFailure` naming what could not be done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zgrid.node.errors import NetworkFailure, SystemCommandError
from zgrid.node.system import run_command

__all__ = [
    "NETNS_DIR",
    "Link",
    "Route",
    "add_address",
    "add_bridge",
    "add_netns",
    "add_veth",
    "addresses",
    "delete_link",
    "delete_netns",
    "delete_route",
    "ensure_source_rule",
    "get_link",
    "get_sysctl",
    "links",
    "list_netns",
    "move_link",
    "netns_exists",
    "netns_path",
    "replace_route",
    "routes",
    "set_link",
    "set_master",
    "set_sysctl",
    "set_up",
]

NETNS_DIR = Path("/run/netns")
_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Link:
    """One network interface as `ip -d link` shows it."""

    name: str
    index: int
    kind: str | None  # "veth", "bridge", "tun" …; None for loopback and physical links
    up: bool  # administratively up (IFF_UP)
    master: str | None  # the bridge it is a port of
    mtu: int


@dataclass(frozen=True, slots=True)
class Route:
    """One route of a table; ``dst`` is "default" or a prefix (a host route has no /len)."""

    dst: str
    dev: str | None
    gateway: str | None
    type: str  # "unicast", "unreachable", "local" …


def netns_path(name: str) -> Path:
    """Where `ip netns` keeps the named namespace (what `nsenter --net=` and runc take)."""
    return NETNS_DIR / name


def _ip(args: Sequence[str], netns: str | None) -> list[str]:
    return ["ip", *(("-n", netns) if netns else ()), *args]


async def _run(what: str, argv: Sequence[str]) -> str:
    try:
        return await run_command(argv, timeout=_TIMEOUT)
    except SystemCommandError as exc:
        raise NetworkFailure(f"cannot {what}: {exc}") from exc


async def _json(what: str, argv: Sequence[str]) -> list[dict[str, Any]]:
    out = await _run(what, argv)
    if not out.strip():
        return []
    try:
        data = json.loads(out)
    except ValueError as exc:
        raise NetworkFailure(f"cannot {what}: `{' '.join(argv)}` printed no JSON") from exc
    if not isinstance(data, list):
        raise NetworkFailure(f"cannot {what}: `{' '.join(argv)}` printed no JSON list")
    return [entry for entry in data if isinstance(entry, dict)]


def _where(netns: str | None) -> str:
    return f" in netns {netns}" if netns else ""


# --- namespaces -------------------------------------------------------------------------


async def list_netns() -> set[str]:
    """The names of every namespace `ip netns` knows on the machine."""
    entries = await _json("list network namespaces", ["ip", "-j", "netns", "list"])
    return {str(entry["name"]) for entry in entries if "name" in entry}


async def _netns_usable(name: str) -> bool:
    try:
        await run_command(_ip(["link", "show", "lo"], name), timeout=_TIMEOUT)
    except SystemCommandError:
        return False
    return True


async def netns_exists(name: str) -> bool:
    """Whether the namespace exists and can be entered (a stale name file is not one)."""
    return netns_path(name).exists() and await _netns_usable(name)


async def add_netns(name: str) -> None:
    """Create the namespace with its loopback up; a half-made one (crash) is made again."""
    if netns_path(name).exists() and not await _netns_usable(name):
        await delete_netns(name)  # a name file left without its mount by a crash
    if not netns_path(name).exists():
        try:
            await run_command(["ip", "netns", "add", name], timeout=_TIMEOUT)
        except SystemCommandError as exc:
            if not await _netns_usable(name):  # a concurrent add won the race otherwise
                raise NetworkFailure(f"cannot create netns {name}: {exc}") from exc
    await set_up("lo", netns=name)


async def delete_netns(name: str) -> None:
    """Remove the namespace's name; its links go when no process is left inside it."""
    if not netns_path(name).exists():
        return
    try:
        await run_command(["ip", "netns", "delete", name], timeout=_TIMEOUT)
    except SystemCommandError as exc:
        if netns_path(name).exists():
            raise NetworkFailure(f"cannot delete netns {name}: {exc}") from exc


# --- links ------------------------------------------------------------------------------


def _link(entry: dict[str, Any]) -> Link:
    info = entry.get("linkinfo") or {}
    kind = info.get("info_kind")
    return Link(
        name=str(entry["ifname"]),
        index=int(entry["ifindex"]),
        kind=str(kind) if kind else None,
        up="UP" in entry.get("flags", []),
        master=entry.get("master"),
        mtu=int(entry.get("mtu", 0)),
    )


async def links(*, netns: str | None = None) -> list[Link]:
    """Every link of the namespace."""
    entries = await _json(f"list links{_where(netns)}", _ip(["-j", "-d", "link", "show"], netns))
    return [_link(entry) for entry in entries]


async def get_link(name: str, *, netns: str | None = None) -> Link | None:
    """The named link, or None when there is none."""
    found = [link for link in await links(netns=netns) if link.name == name]
    return found[0] if found else None


async def _add_link(name: str, kind: str, args: Sequence[str], netns: str | None) -> None:
    existing = await get_link(name, netns=netns)
    if existing is not None:
        if existing.kind != kind:
            raise NetworkFailure(
                f"cannot create {kind} {name}{_where(netns)}: a {existing.kind or 'device'} "
                "of that name exists"
            )
        return
    await _run(f"create {kind} {name}{_where(netns)}", _ip(["link", "add", name, *args], netns))


async def add_bridge(name: str, *, netns: str | None = None) -> None:
    """Create a bridge (it is left down: call :func:`set_up`)."""
    await _add_link(name, "bridge", ["type", "bridge"], netns)


async def add_veth(
    name: str, peer: str, *, peer_netns: str | None = None, netns: str | None = None
) -> None:
    """Create a veth pair ``name`` ↔ ``peer``, the peer made directly in ``peer_netns``.

    Both ends appear in one kernel step, so a crash never leaves half a pair; a pair whose
    ``name`` end already exists is left as it is.
    """
    args = ["type", "veth", "peer", "name", peer, *(("netns", peer_netns) if peer_netns else ())]
    await _add_link(name, "veth", args, netns)


async def add_tap(name: str, *, netns: str | None = None) -> None:
    """Create a persistent tap device (a VM's network card opens it by name)."""
    existing = await get_link(name, netns=netns)
    if existing is not None:
        if existing.kind != "tun":
            raise NetworkFailure(
                f"cannot create tap {name}{_where(netns)}: a {existing.kind or 'device'} "
                "of that name exists"
            )
        return
    await _run(
        f"create tap {name}{_where(netns)}",
        _ip(["tuntap", "add", "dev", name, "mode", "tap"], netns),
    )


async def delete_link(name: str, *, netns: str | None = None) -> None:
    """Delete the link (a veth takes its peer with it); a missing one is fine."""
    if await get_link(name, netns=netns) is None:
        return
    try:
        await run_command(_ip(["link", "delete", name], netns), timeout=_TIMEOUT)
    except SystemCommandError as exc:
        if await get_link(name, netns=netns) is not None:
            raise NetworkFailure(f"cannot delete link {name}{_where(netns)}: {exc}") from exc


async def move_link(name: str, netns: str) -> None:
    """Move the link from this namespace into ``netns`` (already there: nothing to do)."""
    if await get_link(name) is None and await get_link(name, netns=netns) is not None:
        return
    await _run(f"move {name} into netns {netns}", ["ip", "link", "set", name, "netns", netns])


async def set_link(
    name: str, *, mac: str | None = None, mtu: int | None = None, netns: str | None = None
) -> None:
    """Set the link's hardware address and/or MTU."""
    args = [*(("address", mac) if mac else ()), *(("mtu", str(mtu)) if mtu else ())]
    if args:
        await _run(
            f"set {' '.join(args)} on {name}{_where(netns)}",
            _ip(["link", "set", name, *args], netns),
        )


async def set_up(name: str, *, netns: str | None = None) -> None:
    await _run(f"bring {name} up{_where(netns)}", _ip(["link", "set", name, "up"], netns))


async def set_master(name: str, bridge: str, *, netns: str | None = None) -> None:
    """Make ``name`` a port of ``bridge``."""
    await _run(
        f"join {name} to bridge {bridge}{_where(netns)}",
        _ip(["link", "set", name, "master", bridge], netns),
    )


# --- addresses and routes ---------------------------------------------------------------


async def addresses(name: str, *, netns: str | None = None) -> list[str]:
    """The link's addresses as ``address/prefixlen``."""
    entries = await _json(
        f"list addresses of {name}{_where(netns)}", _ip(["-j", "addr", "show", "dev", name], netns)
    )
    return [
        f"{info['local']}/{info['prefixlen']}"
        for entry in entries
        for info in entry.get("addr_info", [])
        if "local" in info
    ]


async def add_address(
    name: str, cidr: str, *, netns: str | None = None, nodad: bool = False
) -> None:
    """Give the link ``cidr`` (``address/prefixlen``); ``nodad`` makes an IPv6 one usable at once."""
    argv = ["addr", "replace", cidr, "dev", name, *(("nodad",) if nodad else ())]
    await _run(f"add address {cidr} to {name}{_where(netns)}", _ip(argv, netns))


def _route(entry: dict[str, Any]) -> Route:
    return Route(
        dst=str(entry.get("dst", "")),
        dev=entry.get("dev"),
        gateway=entry.get("gateway"),
        type=str(entry.get("type", "unicast")),
    )


async def routes(*, family: int = 6, table: str = "main", netns: str | None = None) -> list[Route]:
    """The routes of ``table`` for IPv``family``."""
    argv = _ip([f"-{family}", "-j", "route", "show", "table", table], netns)
    return [_route(entry) for entry in await _json(f"list routes{_where(netns)}", argv)]


def _route_args(dst: str, dev: str | None, via: str | None, unreachable: bool) -> list[str]:
    return [
        *(("unreachable",) if unreachable else ()),
        dst,
        *(("via", via) if via else ()),
        *(("dev", dev) if dev else ()),
    ]


def _family(dst: str, via: str | None) -> str:
    # "default" says nothing of its family: the gateway does.
    return "-6" if ":" in dst or (via is not None and ":" in via) else "-4"


async def replace_route(
    dst: str,
    *,
    dev: str | None = None,
    via: str | None = None,
    unreachable: bool = False,
    table: str | None = None,
    netns: str | None = None,
) -> None:
    """Add the route (to ``table``, else the main one), or replace the one to the same ``dst``."""
    where = ("table", table) if table else ()
    argv = _ip(
        [_family(dst, via), "route", "replace", *_route_args(dst, dev, via, unreachable), *where],
        netns,
    )
    await _run(f"add route to {dst}{_where(netns)}", argv)


async def ensure_source_rule(
    source: str, table: str, *, priority: int, netns: str | None = None
) -> None:
    """Route what leaves from ``source`` (an address) by ``table``: a host with two ways out
    answers from its public address through the public gateway (the rule is made once)."""
    family = "-6" if ":" in source else "-4"
    shown = await _run(f"list rules{_where(netns)}", _ip([family, "rule", "show"], netns))
    if any(f"from {source} lookup {table}" in line for line in shown.splitlines()):
        return
    argv = _ip(
        [family, "rule", "add", "from", source, "lookup", table, "priority", str(priority)], netns
    )
    await _run(f"add a rule for {source}{_where(netns)}", argv)


async def delete_route(dst: str, *, dev: str | None = None, netns: str | None = None) -> None:
    """Delete the route to ``dst`` (through ``dev`` when given); a missing one is fine."""
    family = _family(dst, None)
    argv = _ip([family, "route", "delete", dst, *(("dev", dev) if dev else ())], netns)
    try:
        await run_command(argv, timeout=_TIMEOUT)
    except SystemCommandError as exc:
        gone = ("No such process", "Cannot find device", "not found")
        if not any(text in exc.output for text in gone):
            raise NetworkFailure(f"cannot delete route to {dst}{_where(netns)}: {exc}") from exc


# --- sysctls ----------------------------------------------------------------------------


def _sysctl(args: Sequence[str], netns: str | None) -> list[str]:
    return [*(("ip", "netns", "exec", netns) if netns else ()), "sysctl", *args]


async def get_sysctl(key: str, *, netns: str | None = None) -> str:
    """A kernel setting (``net.ipv6.conf.all.forwarding``) as the namespace sees it."""
    out = await _run(f"read {key}{_where(netns)}", _sysctl(["-n", key], netns))
    return out.strip()


async def set_sysctl(key: str, value: str | int, *, netns: str | None = None) -> None:
    """Set a kernel setting; network ones are per namespace."""
    await _run(f"set {key}={value}{_where(netns)}", _sysctl(["-q", "-w", f"{key}={value}"], netns))

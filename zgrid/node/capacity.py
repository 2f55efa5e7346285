"""What the node offers the grid: the machine measured, less what the node itself needs.

:func:`measure` reads the machine: cores this process may run on
(``os.sched_getaffinity``), memory (``MemTotal`` of ``/proc/meminfo``), SSD = the size of
the filesystem holding the data directory (the node keeps every disk image, flist
cache, Zero-DB and its own state there), HDD = 0 (no separate HDD pool yet). From
that it takes the system reserve, :func:`system_reserve`:

- memory: max(10 % of the total, 1 GiB), at most half of it. The kernel, its page
  cache (which holds the flist blocks every container reads), the node daemon, its
  Zero-DB server, yggdrasil, the flist mounts and runc's shims live outside every
  contract's memory limit; about 1 GiB covers them on a small machine and 10 % keeps
  room for the kernel's own tables, which grow with memory.
- SSD: max(5 % of the filesystem, 5 GiB), at most half of it: the flist block cache,
  the node's SQLite state, logs and the metadata ext4 spends on each disk image.
- cores: none. Contracts get CPU quotas, not dedicated cores, and the node's own
  processes use little CPU; the scheduler shares what is left.

What the node declares is what contracts can really use, and the ledger admits node
contracts against it exactly. The explorer's free-capacity formula (FORMATS.md: memory
less max(10 %, 2 GiB), SSD less 20 GiB) subtracts its own margin again from that
figure when it lists nodes; that is a search margin, not a second reservation.

``--capacity cru=2,mru=4GiB,sru=20GiB,hru=0`` (:func:`parse_capacity`) replaces the
measurement, to let several nodes share one test machine: no reserve is taken from it,
but no single value may be more than the machine has (:func:`node_capacity`).
"""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from zgrid.node.errors import NodeConfigError
from zgrid.types import GIB, Capacity

__all__ = [
    "measure",
    "measure_machine",
    "node_capacity",
    "parse_capacity",
    "parse_size",
    "system_reserve",
]

MEMINFO = Path("/proc/meminfo")

_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_KEYS = ("cru", "mru", "sru", "hru")
_REQUIRED = ("cru", "mru", "sru")
_WORDS = {"cru": "cores", "mru": "memory", "sru": "SSD storage", "hru": "HDD storage"}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def _memory_total(meminfo: Path) -> int:
    try:
        text = meminfo.read_text()
    except OSError as exc:
        raise NodeConfigError(f"cannot read {meminfo}: {exc.strerror or exc}") from exc
    found = re.search(r"^MemTotal:\s+([0-9]+)\s*kB\s*$", text, re.MULTILINE)
    if found is None:
        raise NodeConfigError(f"{meminfo} has no MemTotal line in kB")
    return int(found.group(1)) * 1024


def measure_machine(data_dir: Path, *, meminfo: Path = MEMINFO) -> Capacity:
    """The machine as it is: cores, memory, the size of ``data_dir``'s filesystem, no HDD."""
    try:
        fs = os.statvfs(data_dir)
    except OSError as exc:
        raise NodeConfigError(
            f"cannot measure the storage of {data_dir}: {exc.strerror or exc}"
        ) from exc
    return Capacity(
        cru=len(os.sched_getaffinity(0)),
        mru=_memory_total(meminfo),
        sru=fs.f_blocks * fs.f_frsize,
        hru=0,
    )


def system_reserve(machine: Capacity) -> Capacity:
    """What the node keeps for itself out of ``machine`` (see the module's docstring)."""
    return Capacity(
        mru=min(max(machine.mru // 10, GIB), machine.mru // 2),
        sru=min(max(machine.sru // 20, 5 * GIB), machine.sru // 2),
    )


def measure(data_dir: Path, *, meminfo: Path = MEMINFO) -> Capacity:
    """The capacity the node offers: the machine less :func:`system_reserve`."""
    machine = measure_machine(data_dir, meminfo=meminfo)
    return machine - system_reserve(machine)


_MAX_TEXT = 256  # characters of the whole --capacity value
_MAX_VALUE = 32  # characters of one value: "1048576TiB" is 10


def parse_size(text: str) -> int:
    """Bytes of ``"4GiB"``, ``"1.5 TiB"``, ``"512MiB"``, ``"100"``; ValueError says why not."""
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"{text.strip()!r} is not a size (a number and B, KiB, MiB, GiB or TiB)")
    number, unit = found.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"{unit!r} is not a unit; use B, KiB, MiB, GiB or TiB")
    try:
        value = Decimal(number) * factor
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{number!r} is not a number") from exc
    if value != value.to_integral_value():
        raise ValueError(f"{text.strip()!r} is not a whole number of bytes")
    return int(value)


def parse_capacity(text: str) -> Capacity:
    """``"cru=2,mru=4GiB,sru=20GiB,hru=0"`` -> Capacity; NodeConfigError names the bad item.

    cru is a whole number of cores, at least 1; mru, sru and hru are sizes (a number
    with B, KiB, MiB, GiB or TiB; no unit means bytes). cru, mru and sru must be given
    (the override replaces the measurement whole); hru left out is 0.
    """
    if len(text) > _MAX_TEXT:
        raise NodeConfigError(
            f"--capacity is {len(text)} characters long; at most {_MAX_TEXT} (e.g. cru=2,mru=4GiB,sru=20GiB)"
        )
    values: dict[str, int] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise NodeConfigError(f"--capacity: {item!r} is not key=value (e.g. mru=4GiB)")
        if key not in _KEYS:
            raise NodeConfigError(
                f"--capacity: unknown resource {key!r} in {item!r}; use cru, mru, sru, hru"
            )
        if key in values:
            raise NodeConfigError(f"--capacity: {key} is given twice")
        values[key] = _value(key, value, item)
    missing = [key for key in _REQUIRED if key not in values]
    if missing:
        raise NodeConfigError(
            f"--capacity: {', '.join(missing)} missing; give cru, mru and sru "
            "(and hru, 0 if left out), e.g. cru=2,mru=4GiB,sru=20GiB"
        )
    return Capacity(**values)


def _value(key: str, value: str, item: str) -> int:
    if len(value.strip()) > _MAX_VALUE:
        raise NodeConfigError(
            f"--capacity: {key} is {len(value.strip())} characters long; at most {_MAX_VALUE}"
        )
    if key == "cru":
        if not re.fullmatch(r"\s*[0-9]+\s*", value) or int(value) < 1:
            raise NodeConfigError(f"--capacity: {item!r}: cru is a whole number of cores, >= 1")
        return int(value)
    try:
        size = parse_size(value)
    except ValueError as exc:
        raise NodeConfigError(f"--capacity: {item!r}: {exc}") from exc
    if key == "mru" and size < 256 * 1024**2:
        raise NodeConfigError(f"--capacity: {item!r}: a node needs at least 256 MiB of memory")
    return size


def _shown(key: str, value: int, words: str) -> str:
    if key == "cru":
        return f"{value} core{'' if value == 1 else 's'}"
    return f"{value / GIB:.1f}".removesuffix(".0") + f" GiB of {words}"


def node_capacity(
    data_dir: Path, override: str | None = None, *, meminfo: Path = MEMINFO
) -> Capacity:
    """What the node declares: :func:`measure`, or the ``--capacity`` override checked
    against the machine (no value above what it has; sru and hru share ``data_dir``'s
    filesystem, so together they fit in it)."""
    if override is None:
        return measure(data_dir, meminfo=meminfo)
    wanted = parse_capacity(override)
    machine = measure_machine(data_dir, meminfo=meminfo)
    storage = ("sru+hru", "storage") if wanted.hru else ("sru", _WORDS["sru"])
    checks = (
        ("cru", "cru", _WORDS["cru"], wanted.cru, machine.cru, ""),
        ("mru", "mru", _WORDS["mru"], wanted.mru, machine.mru, ""),
        (
            "sru",
            *storage,
            wanted.sru + wanted.hru,
            machine.sru,
            f" in the filesystem of {data_dir}",
        ),
    )
    for key, named, words, asked, has, where in checks:
        if asked > has:
            raise NodeConfigError(
                f"--capacity {named}: {_shown(key, asked, words)} is more than this machine "
                f"has ({_shown(key, has, words)}{where})"
            )
    return wanted

"""Measuring the machine, the system reserve, and the --capacity override."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from zgrid.node.capacity import (
    measure,
    measure_machine,
    node_capacity,
    parse_capacity,
    parse_size,
    system_reserve,
)
from zgrid.node.errors import NodeConfigError
from zgrid.types import GIB, MIB, Capacity

TIB = 1024 * GIB


def _mem_total() -> int:
    text = Path("/proc/meminfo").read_text()
    found = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) * 1024


def test_the_machine_is_measured_from_the_kernel(tmp_path: Path) -> None:
    fs = os.statvfs(tmp_path)
    machine = measure_machine(tmp_path)
    assert machine == Capacity(
        cru=len(os.sched_getaffinity(0)),
        mru=_mem_total(),
        sru=fs.f_blocks * fs.f_frsize,
        hru=0,
    )
    offered = measure(tmp_path)
    assert offered == machine - system_reserve(machine)
    assert offered.cru == machine.cru
    assert 0 < offered.mru < machine.mru
    assert 0 < offered.sru < machine.sru


@pytest.mark.parametrize(
    ("machine", "reserve"),
    [
        # memory: max(10 %, 1 GiB), at most half; SSD: max(5 %, 5 GiB), at most half
        (
            Capacity(cru=8, mru=64 * GIB, sru=2 * TIB),
            Capacity(mru=64 * GIB // 10, sru=2 * TIB // 20),
        ),
        (Capacity(cru=2, mru=4 * GIB, sru=50 * GIB), Capacity(mru=GIB, sru=5 * GIB)),
        (Capacity(cru=1, mru=GIB, sru=6 * GIB), Capacity(mru=512 * MIB, sru=3 * GIB)),
    ],
)
def test_the_system_reserve(machine: Capacity, reserve: Capacity) -> None:
    assert system_reserve(machine) == reserve


def test_measuring_names_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(NodeConfigError, match=f"cannot measure the storage of {tmp_path}/gone"):
        measure(tmp_path / "gone")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree:  100 kB\n")
    with pytest.raises(NodeConfigError, match=f"{meminfo} has no MemTotal line in kB"):
        measure(tmp_path, meminfo=meminfo)
    with pytest.raises(NodeConfigError, match=f"cannot read {tmp_path}/none"):
        measure(tmp_path, meminfo=tmp_path / "none")
    meminfo.write_text("MemTotal:  4194304 kB\nMemFree: 1 kB\n")
    assert measure(tmp_path, meminfo=meminfo).mru == 3 * GIB


def test_sizes_in_every_unit() -> None:
    assert parse_size("100") == 100
    assert parse_size("100B") == 100
    assert parse_size("4KiB") == 4096
    assert parse_size("512 MiB") == 512 * MIB
    assert parse_size("1.5GiB") == 3 * GIB // 2
    assert parse_size("2tib") == 2 * TIB
    with pytest.raises(ValueError, match="'GB' is not a unit"):
        parse_size("4GB")
    with pytest.raises(ValueError, match=r"'0\.3B' is not a whole number of bytes"):
        parse_size("0.3B")
    with pytest.raises(ValueError, match="'-4GiB' is not a size"):
        parse_size("-4GiB")


def test_the_override_is_parsed_whole() -> None:
    assert parse_capacity("cru=2,mru=4GiB,sru=20GiB,hru=0") == Capacity(
        cru=2, mru=4 * GIB, sru=20 * GIB
    )
    assert parse_capacity(" cru = 1 , mru=512MiB, sru=1TiB, hru=2TiB ") == Capacity(
        cru=1, mru=512 * MIB, sru=TIB, hru=2 * TIB
    )
    assert parse_capacity("cru=1,mru=1GiB,sru=1GiB").hru == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "cru=2,mru=4GiB,sru=20GiB,gpu=1",
            "unknown resource 'gpu' in 'gpu=1'; use cru, mru, sru, hru",
        ),
        ("cru=2,mru=4GB,sru=20GiB", "'mru=4GB': 'GB' is not a unit; use B, KiB, MiB, GiB or TiB"),
        ("cru=two,mru=4GiB,sru=20GiB", "'cru=two': cru is a whole number of cores, >= 1"),
        ("cru=0,mru=4GiB,sru=20GiB", "'cru=0': cru is a whole number of cores, >= 1"),
        ("cru=2,mru=4GiB", "sru missing; give cru, mru and sru"),
        ("cru=2,cru=3,mru=4GiB,sru=1GiB", "cru is given twice"),
        ("cru=2,mru,sru=1GiB", "'mru' is not key=value (e.g. mru=4GiB)"),
        ("cru=2,mru=100MiB,sru=1GiB", "'mru=100MiB': a node needs at least 256 MiB of memory"),
        ("cru=2,mru=4GiB,sru=lots", "'sru=lots': 'lots' is not a size"),
        # Python refuses to read integers of more than 4300 digits: never get that far.
        ("cru=" + "9" * 200, "cru is 200 characters long; at most 32"),
        ("cru=2,mru=" + "9" * 100 + "TiB,sru=1GiB", "mru is 103 characters long; at most 32"),
    ],
)
def test_a_bad_override_names_the_bad_item(text: str, message: str) -> None:
    with pytest.raises(NodeConfigError) as caught:
        parse_capacity(text)
    assert str(caught.value).startswith("--capacity: ")
    assert message in str(caught.value)


def test_an_endless_override_is_refused_whole() -> None:
    with pytest.raises(NodeConfigError, match="--capacity is 5004 characters long; at most 256"):
        parse_capacity("cru=" + "9" * 5000)


def test_the_override_replaces_the_measurement_within_the_machine(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  8388608 kB\n")  # 8 GiB
    machine = measure_machine(tmp_path, meminfo=meminfo)
    assert node_capacity(tmp_path, meminfo=meminfo) == measure(tmp_path, meminfo=meminfo)
    # No reserve is taken from an override: it is what the operator decided.
    assert node_capacity(tmp_path, "cru=1,mru=8GiB,sru=1GiB", meminfo=meminfo) == Capacity(
        cru=1, mru=8 * GIB, sru=GIB
    )
    with pytest.raises(NodeConfigError) as caught:
        node_capacity(tmp_path, "cru=1,mru=9GiB,sru=1GiB", meminfo=meminfo)
    assert str(caught.value) == (
        "--capacity mru: 9 GiB of memory is more than this machine has (8 GiB of memory)"
    )
    cores = machine.cru + 1
    with pytest.raises(NodeConfigError, match=f"--capacity cru: {cores} cores is more than"):
        node_capacity(tmp_path, f"cru={cores},mru=1GiB,sru=1GiB", meminfo=meminfo)
    half = machine.sru // 2 + 1
    with pytest.raises(
        NodeConfigError, match=r"--capacity sru\+hru: .* GiB of storage .* in the filesystem of"
    ):
        node_capacity(tmp_path, f"cru=1,mru=1GiB,sru={half},hru={half}", meminfo=meminfo)

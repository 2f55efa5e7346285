"""Capacity of each workload type and the CU/SU math."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tests.factories import deployment_doc
from zgrid.types import (
    GIB,
    MIB,
    Capacity,
    ZMachine,
    ZMount,
    compute_units,
    farming_units,
    make_workload,
    min_root_size,
    parse_deployment,
    storage_units,
    workload_id,
)


def test_deployment_capacity_sums_every_workload() -> None:
    deployment = parse_deployment(deployment_doc())
    by_name = {w.name: w.data.capacity() for w in deployment.workloads}
    assert by_name["disk"] == Capacity(sru=10 * GIB)
    assert by_name["vol"] == Capacity(sru=5 * GIB)
    assert by_name["store"] == Capacity(hru=20 * GIB)
    assert by_name["pubip"] == Capacity(ipv4=1)
    assert by_name["vm"] == Capacity(cru=2, mru=512 * MIB, sru=2 * GIB)
    assert by_name["net"] == by_name["web"] == by_name["site"] == Capacity()
    assert deployment.capacity() == Capacity(
        cru=2, mru=512 * MIB, sru=17 * GIB, hru=20 * GIB, ipv4=1
    )


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        (1, 256 * MIB, 500 * MIB),
        (4, 4 * GIB, 500 * MIB),
        (5, 4 * GIB, GIB),
        (8, 8 * GIB, GIB),
        (2, 16 * GIB, 2 * GIB),
    ],
)
def test_machine_root_is_at_least_the_minimum(cpu: int, memory: int, expected: int) -> None:
    assert min_root_size(cpu, memory) == expected
    machine = ZMachine.model_validate(
        {
            "flist": "x",
            "compute_capacity": {"cpu": cpu, "memory": memory},
            "network": {"interfaces": [{"network": "n", "ip": "10.0.0.2"}]},
        }
    )
    assert machine.capacity().sru == expected


@pytest.mark.parametrize(
    ("cru", "mru_gib", "cu"),
    [
        (1, 2, Fraction(1, 2)),
        (2, 4, Fraction(1)),
        (4, 8, Fraction(2)),
        (1, 8, Fraction(1)),
        (8, 4, Fraction(2)),
    ],
)
def test_compute_units(cru: int, mru_gib: int, cu: Fraction) -> None:
    assert compute_units(Capacity(cru=cru, mru=mru_gib * GIB)) == cu


def test_storage_units() -> None:
    assert storage_units(Capacity(sru=200 * GIB, hru=1200 * GIB)) == 2


def test_farming_units() -> None:
    cu, su = farming_units(Capacity(cru=8, mru=33 * GIB, sru=1000 * GIB, hru=1200 * GIB))
    assert cu == 8  # min((33-1)/4, 16, 20)
    assert su == 1 + Fraction(1000 * 4, 5 * 200)
    assert farming_units(Capacity())[0] == 0


def test_capacity_arithmetic() -> None:
    a = Capacity(cru=2, mru=3, sru=4, hru=5, ipv4=1)
    assert a + a - a == a
    assert a.fits_in(a + a)
    assert not (a + a).fits_in(a)
    assert a.to_dict() == {"cru": 2, "mru": 3, "sru": 4, "hru": 5, "ipv4": 1}


def test_make_workload_and_ids() -> None:
    workload = make_workload("disk", ZMount(size=GIB), description="scratch")
    assert workload.type == "zmount"
    assert workload.description == "scratch"
    assert workload_id(11, 42, "disk") == "11-42-disk"

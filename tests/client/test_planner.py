"""The planner on hand-built node offers: where each item goes, and why nothing fits."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from zgrid.client.errors import PlacementError
from zgrid.client.offers import NodeOffer
from zgrid.client.planner import place, size_text
from zgrid.client.spec.model import (
    DiskSpec,
    MachineSpec,
    MountSpec,
    PlacementRules,
    Spec,
    ZdbSpec,
)
from zgrid.types import GIB, MIB, Capacity

BIG = Capacity(cru=16, mru=64 * GIB, sru=1000 * GIB, hru=4000 * GIB, ipv4=4)


def offer(node_id: int, **fields: Any) -> NodeOffer:
    values: dict[str, Any] = {
        "node_id": node_id,
        "twin_id": 100 + node_id,
        "farm_id": 1,
        "farm_name": "alpha",
        "status": "up",
        "total": BIG,
        "free": BIG,
        "country": "DE",
        "city": "Berlin",
    }
    values.update(fields)
    return NodeOffer(**values)


def free(**values: int) -> Capacity:
    """A free capacity: BIG with some resources changed."""
    return dataclasses.replace(BIG, **values)


def web(replicas: int = 1, *, memory: int = 1 * GIB, **fields: Any) -> MachineSpec:
    return MachineSpec("web", "busybox", cpu=1, memory=memory, replicas=replicas, **fields)


def spec(*machines: MachineSpec, rules: PlacementRules | None = None, **fields: Any) -> Spec:
    return Spec("app", machines=machines, placement=rules or PlacementRules(), **fields)


def refusal(the_spec: Spec, offers: list[NodeOffer], **options: Any) -> PlacementError:
    with pytest.raises(PlacementError) as caught:
        place(the_spec, offers, **options)
    return caught.value


# -- where things go ---------------------------------------------------------------------------


def test_two_replicas_spread_over_two_nodes() -> None:
    placed = place(spec(web(2)), [offer(1), offer(2)])
    assert placed == {"machine/web/0": 1, "machine/web/1": 2}


def test_three_replicas_on_two_nodes_name_spread() -> None:
    error = refusal(spec(web(3)), [offer(1), offer(2)])
    assert error.what == "machine web (replica 3 of 3)"
    assert error.reasons == ("spread: replicas already use nodes 1, 2 and no other node fits",)
    assert str(error).startswith("cannot place machine web (replica 3 of 3): spread:")


def test_without_spread_replicas_share_a_node_and_its_capacity() -> None:
    rules = PlacementRules(spread=False)
    # 3 GiB free: two 1 GiB replicas fit on node 1 together, the third goes elsewhere.
    offers = [offer(1, free=free(mru=3 * GIB)), offer(2, free=free(mru=2 * GIB))]
    placed = place(spec(web(3), rules=rules), offers)
    assert placed == {"machine/web/0": 1, "machine/web/1": 1, "machine/web/2": 2}
    # Four would need 4 GiB with 5 GiB free in all, yet no node keeps 1 GiB for the fourth:
    error = refusal(spec(web(4, memory=2 * GIB), rules=rules), offers)
    assert error.reasons == (
        "no up node has 2 GiB free memory; the largest free is 1 GiB on node 1 "
        "(after the 2 GiB this plan puts there)",
    )


def test_the_node_with_most_free_memory_wins_and_ties_go_to_the_lower_id() -> None:
    offers = [offer(3, free=free(mru=8 * GIB)), offer(2, free=free(mru=32 * GIB)), offer(1)]
    assert place(spec(web()), offers) == {"machine/web/0": 1}
    offers = [offer(3, free=free(mru=8 * GIB)), offer(2), offer(1)]
    assert place(spec(web()), offers) == {"machine/web/0": 1}
    offers = [offer(3), offer(2, free=free(mru=128 * GIB)), offer(1)]
    assert place(spec(web()), offers) == {"machine/web/0": 2}


def test_bigger_units_are_placed_first() -> None:
    # Node 1 has room for the big machine only; placed in spec order, the small one would
    # take node 1 (most memory) and leave the big one nowhere to go.
    small = MachineSpec("small", "busybox", memory=1 * GIB)
    big = MachineSpec("big", "busybox", memory=10 * GIB)
    offers = [offer(1, free=free(mru=10 * GIB)), offer(2, free=free(mru=9 * GIB))]
    assert place(spec(small, big), offers) == {"machine/small/0": 2, "machine/big/0": 1}


def test_placement_is_deterministic_whatever_the_order_of_offers() -> None:
    offers = [offer(i, free=free(mru=(i % 4 + 4) * GIB)) for i in range(1, 13)]
    the_spec = spec(web(5), MachineSpec("db", "busybox", memory=3 * GIB, replicas=2))
    first = place(the_spec, offers)
    shuffler = random.Random(7)
    for _ in range(5):
        shuffled = list(offers)
        shuffler.shuffle(shuffled)
        assert place(the_spec, shuffled) == first


def test_attached_disks_and_zdbs_go_with_their_machine_replica() -> None:
    machine = web(2, mounts=(MountSpec("data", "/data"),))
    the_spec = spec(
        machine,
        disks=(DiskSpec("data", 40 * GIB), DiskSpec("spare", 5 * GIB)),
        zdbs=(ZdbSpec("cache", 10 * GIB, machine="web"),),
    )
    # Node 1 has the most memory but not the SSD for machine + disk: replica 0 goes to 2.
    offers = [
        offer(1, free=free(mru=60 * GIB, sru=30 * GIB)),
        offer(2, free=free(mru=50 * GIB)),
        offer(3, free=free(mru=40 * GIB)),
    ]
    placed = place(the_spec, offers)
    assert placed["machine/web/0"] == placed["disk/data/0"] == placed["zdb/cache/0"] == 2
    assert placed["machine/web/1"] == placed["disk/data/1"] == placed["zdb/cache/1"] == 3
    assert placed["disk/spare/0"] == 1  # standalone: where most memory is free
    # The unit's SSD is summed: 40 GiB disk + 500 MiB root > 40 GiB free everywhere.
    tight = [offer(i, free=free(sru=40 * GIB)) for i in (1, 2, 3)]
    error = refusal(the_spec, tight)
    assert error.what == "machine web (replica 1 of 2)"
    assert error.reasons == (
        "no up node has 40.48 GiB free SSD; the largest free is 40 GiB on node 1",
    )


def test_a_zdb_attached_needs_hdd_on_its_machines_node() -> None:
    the_spec = spec(web(), zdbs=(ZdbSpec("cache", 100 * GIB, machine="web"),))
    offers = [offer(1, free=free(hru=50 * GIB)), offer(2, free=free(mru=8 * GIB))]
    assert place(the_spec, offers) == {"machine/web/0": 2, "zdb/cache/0": 2}


def test_standalone_zdb_uses_its_own_rules() -> None:
    the_spec = spec(web(), zdbs=(ZdbSpec("store", 1 * GIB, placement=PlacementRules(nodes=(2,))),))
    assert place(the_spec, [offer(1), offer(2, free=free(mru=1 * GIB))]) == {
        "machine/web/0": 1,
        "zdb/store/0": 2,
    }


# -- what runs already ---------------------------------------------------------------------------


def test_current_placements_are_kept_and_not_counted_twice() -> None:
    # Node 2 has 1 GiB free: the replica running there is counted in that already. Kept,
    # and not counted again, it leaves the 1 GiB for the new zdb attached to it.
    machine = web(2)
    the_spec = spec(machine, zdbs=(ZdbSpec("cache", 1 * GIB, machine="web"),))
    offers = [offer(1), offer(2, free=free(mru=1 * GIB, hru=1 * GIB)), offer(3)]
    current = {"machine/web/0": 2, "machine/web/1": 3, "zdb/old/0": 1}
    placed = place(the_spec, offers, current=current)
    assert placed == {
        "machine/web/0": 2,
        "machine/web/1": 3,
        "zdb/cache/0": 2,
        "zdb/cache/1": 3,
    }
    # Without what runs, node 2 has too little memory and replica 0 goes elsewhere.
    assert place(the_spec, offers)["machine/web/0"] == 1


def test_new_items_of_a_kept_machine_must_fit_its_node() -> None:
    the_spec = spec(web(), zdbs=(ZdbSpec("cache", 10 * GIB, machine="web"),))
    offers = [offer(1, free=free(hru=2 * GIB)), offer(2)]
    error = refusal(the_spec, offers, current={"machine/web/0": 1})
    assert error.what == "machine web"
    assert error.reasons == (
        "zdb cache must go with it on node 1, where it runs",
        "no up node has 10 GiB free HDD; the largest free is 2 GiB on node 1",
    )


def test_current_placements_move_when_their_node_no_longer_passes_the_rules() -> None:
    offers = [offer(1), offer(2, farm_id=2), offer(3)]
    rules = PlacementRules(farm=1)
    current = {"machine/web/0": 2, "machine/web/1": 9}  # node 9 is gone
    placed = place(spec(web(2), rules=rules), offers, current=current)
    assert placed == {"machine/web/0": 1, "machine/web/1": 3}


def test_a_down_node_keeps_what_runs_on_it_but_takes_nothing_new() -> None:
    offers = [offer(1, status="down"), offer(2)]
    assert place(spec(web()), offers, current={"machine/web/0": 1}) == {"machine/web/0": 1}
    assert place(spec(web()), offers) == {"machine/web/0": 2}


def test_spread_moves_a_replica_sharing_a_node_with_another() -> None:
    current = {"machine/web/0": 1, "machine/web/1": 1}
    placed = place(spec(web(2)), [offer(1), offer(2)], current=current)
    assert placed == {"machine/web/0": 1, "machine/web/1": 2}


# -- one reason per constraint -------------------------------------------------------------------


def test_memory_too_big_says_how_much_the_largest_node_has() -> None:
    offers = [offer(1, free=free(mru=8 * GIB)), offer(3, free=free(mru=20 * GIB)), offer(2)]
    offers[2] = offer(2, free=free(mru=12 * GIB))
    error = refusal(spec(web(memory=4000 * GIB)), offers)
    assert error.what == "machine web"
    assert error.reasons == (
        "no up node has 4000 GiB free memory; the largest free is 20 GiB on node 3",
    )


def test_cores_hdd_and_ssd_each_have_their_reason() -> None:
    offers = [offer(1, free=free(cru=2)), offer(2, free=free(cru=4, sru=1 * GIB))]
    error = refusal(spec(MachineSpec("web", "busybox", cpu=4, disk=2 * GIB)), offers)
    assert error.reasons == (
        "node 1 has less than 4 free cores; the largest free is 2 cores on node 1",
        "no remaining up node has 2 GiB free SSD; the largest free is 1 GiB on node 2",
    )
    lone = spec(disks=(DiskSpec("big", 5 * GIB),), zdbs=(ZdbSpec("z", 5000 * GIB),))
    error = refusal(lone, [offer(1)])
    assert (error.what, error.reasons) == (
        "zdb z",
        ("no up node has 5000 GiB free HDD; the largest free is 4000 GiB on node 1",),
    )


def test_nodes_not_up_are_named() -> None:
    offers = [
        offer(1, free=free(mru=512 * MIB)),
        offer(4, status="down"),
        offer(5, status="down"),
        offer(6, status="standby"),
    ]
    error = refusal(spec(web()), offers)
    assert error.reasons == (
        "2 nodes are down (4, 5)",
        "1 node is in standby (6)",
        "no up node has 1 GiB free memory; the largest free is 512 MiB on node 1",
    )


def test_nodes_rented_by_other_twins_are_left_out_but_the_deployers_own_are_not() -> None:
    offers = [offer(1, rented_by=40), offer(2, rented_by=41)]
    assert refusal(spec(web()), offers).reasons == ("nodes 1, 2 are rented by other twins",)
    assert refusal(spec(web()), offers[:1]).reasons == ("node 1 is rented by twin 40",)
    assert place(spec(web()), offers, twin_id=41) == {"machine/web/0": 2}


def test_only_the_listed_nodes() -> None:
    rules = PlacementRules(nodes=(2, 9))
    offers = [offer(1), offer(2, status="down"), offer(3)]
    error = refusal(spec(web(), rules=rules), offers)
    assert error.reasons == (
        "placement allows only nodes 2, 9; node 9 is not on the grid",
        "1 node is down (2)",
    )
    assert place(spec(web(), rules=rules), [offer(1), offer(2)]) == {"machine/web/0": 2}


def test_farm_by_id() -> None:
    rules = PlacementRules(farm=1)
    error = refusal(spec(web(), rules=rules), [offer(7, farm_id=2)])
    assert error.reasons == ("no node of the grid is in farm 1 (the farms with nodes: 2 (alpha))",)
    offers = [offer(7, farm_id=2), offer(8, free=free(mru=0))]
    assert refusal(spec(web(), rules=rules), offers).reasons == (
        "node 7 is in farm 2, not farm 1",
        "no remaining up node has 1 GiB free memory; the largest free is 0 bytes on node 8",
    )
    offers = [offer(7, farm_id=2), offer(8, farm_id=3), offer(9, free=free(mru=0))]
    assert refusal(spec(web(), rules=rules), offers).reasons[0] == (
        "nodes 7, 8 are in farms 2, 3, not farm 1"
    )


def test_farm_by_name_ignores_case() -> None:
    offers = [offer(1, farm_id=2, farm_name="beta"), offer(2, farm_id=3, farm_name="Gamma")]
    placed = place(spec(web(), rules=PlacementRules(farm="GAMMA")), offers)
    assert placed == {"machine/web/0": 2}
    error = refusal(spec(web(), rules=PlacementRules(farm="delta")), offers)
    assert error.reasons == (
        "no node of the grid is in farm delta (the farms with nodes: 2 (beta), 3 (Gamma))",
    )
    offers.append(offer(3, farm_id=4, farm_name="delta", status="down"))
    error = refusal(spec(web(), rules=PlacementRules(farm="delta")), offers)
    assert error.reasons == (
        "1 node is down (3)",
        "nodes 1, 2 are in farms Gamma (3), beta (2), not farm delta",
    )


def test_country_ignores_case_and_names_where_the_nodes_are() -> None:
    offers = [offer(1, country="DE"), offer(2, country="FR"), offer(3, country="")]
    error = refusal(spec(web(), rules=PlacementRules(country="BE")), offers)
    assert error.reasons == ("no node in country BE (nodes are in: DE, FR, unknown)",)
    assert place(spec(web(), rules=PlacementRules(country="fr")), offers) == {"machine/web/0": 2}


def test_certified_only() -> None:
    offers = [offer(1), offer(2), offer(3, certified=True, free=free(mru=512 * MIB))]
    error = refusal(spec(web(), rules=PlacementRules(certified=True)), offers)
    assert error.reasons == (
        "nodes 1, 2 are not in certified farms",
        "no remaining up node has 1 GiB free memory; the largest free is 512 MiB on node 3",
    )
    offers[2] = offer(3, certified=True)
    assert place(spec(web(), rules=PlacementRules(certified=True)), offers) == {"machine/web/0": 3}


def test_min_free_counts_the_units_own_needs_and_this_plans_earlier_ones() -> None:
    rules = PlacementRules(min_free_mru=2 * GIB, spread=False)
    # 4 GiB free: one 1 GiB replica leaves 3 GiB, a second leaves 2 GiB, a third 1 GiB.
    offers = [offer(1, free=free(mru=4 * GIB))]
    assert place(spec(web(2), rules=rules), offers) == {"machine/web/0": 1, "machine/web/1": 1}
    error = refusal(spec(web(3), rules=rules), offers)
    assert error.what == "machine web (replica 3 of 3)"
    assert error.reasons == (
        "min_free_mru 2 GiB: node 1 would keep 1 GiB free memory, less than the 2 GiB asked",
    )
    cores = PlacementRules(min_free_cru=2)
    offers = [offer(1, free=free(cru=2)), offer(2, free=free(cru=2)), offer(3, status="down")]
    assert refusal(spec(web(), rules=cores), offers).reasons == (
        "1 node is down (3)",
        "min_free_cru 2 cores: nodes 1, 2 would keep less than that; "
        "the most left would be 1 free core on node 1",
    )
    offers[1] = offer(2, free=free(cru=3))
    assert place(spec(web(), rules=cores), offers) == {"machine/web/0": 2}


def test_an_empty_grid() -> None:
    assert refusal(spec(web()), []).reasons == ("the grid has no nodes",)


def test_size_text_rounds_down_and_picks_a_unit() -> None:
    assert size_text(20 * GIB) == "20 GiB"
    assert size_text(20 * GIB - 1) == "19.99 GiB"
    assert size_text(1536 * MIB) == "1.5 GiB"
    assert size_text(512 * MIB) == "512 MiB"
    assert size_text(100) == "100 bytes"

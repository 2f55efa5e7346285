"""Node selection: which node takes each item of a spec, from a snapshot of node offers.

Pure and deterministic: the same spec and offers (in any order) give the same placement,
and nothing is written. A *unit* is what must share a node: a machine replica with the
disks and zdbs attached to it, or a standalone disk or zdb. Units are placed biggest
first (memory, then cores, SSD, HDD; spec order breaks ties), each on the fitting node
with the most free memory left, the lower node id on a tie, so load spreads over the grid.
When nothing fits, :class:`PlacementError` lists every constraint that eliminated nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from zgrid.client.errors import PlacementError
from zgrid.client.items import SpecItem, spec_items
from zgrid.client.offers import NodeOffer
from zgrid.client.spec.model import PlacementRules, Spec
from zgrid.types import GIB, MIB, Capacity

__all__ = ["place"]

_RESOURCES = ("cru", "mru", "sru", "hru", "ipv4")
_BYTES_OF = {"mru": "memory", "sru": "SSD", "hru": "HDD"}
_SHOWN_IDS = 10  # node ids listed in one reason before "and N more"


@dataclass(frozen=True)
class _Unit:
    what: str  # e.g. "machine web (replica 2 of 2)"
    items: tuple[SpecItem, ...]  # the machine (or the standalone item) first
    rules: PlacementRules
    machine: str | None  # the machine entry whose replicas spread, if any
    order: int  # position in the spec, for a deterministic order among equals
    gateway: bool = False  # only on a gateway node (a public IP and a domain)

    @property
    def capacity(self) -> Capacity:
        total = Capacity()
        for item in self.items:
            total = total + item.capacity
        return total


def place(
    spec: Spec,
    offers: Sequence[NodeOffer],
    *,
    current: Mapping[str, int] | None = None,
    twin_id: int = 0,
) -> dict[str, int]:
    """Item key -> node id for every item of ``spec_items(spec)``.

    ``current`` maps the keys of items already running to their node: a unit whose
    machine (or standalone item) runs on a node that is still offered, not rented by
    another twin and still passes the entry's rules (nodes, farm, country, certified,
    spread) stays there, even when that node is down now (moving it would lose its
    data); its running items are already counted in the node's free capacity, only its
    new items are. ``twin_id``: the deployer's twin, whose rented nodes it may use.
    """
    grid = {offer.node_id: offer for offer in sorted(offers, key=lambda o: o.node_id)}
    running = dict(current or {})
    items = spec_items(spec)
    taken: dict[int, Capacity] = {}
    spread_on: dict[str, set[int]] = {}
    placed: dict[str, int] = {}

    def take(unit: _Unit, node: NodeOffer, counted: Capacity) -> None:
        taken[node.node_id] = taken.get(node.node_id, Capacity()) + counted
        for item in unit.items:
            placed[item.key] = node.node_id
        if unit.machine is not None:
            spread_on.setdefault(unit.machine, set()).add(node.node_id)

    pending: list[_Unit] = []
    for unit in _units(spec, items):
        node = grid.get(running.get(unit.items[0].key, -1))
        if node is None or not _keeps(unit, node, twin_id, spread_on):
            pending.append(unit)
            continue
        new = [item for item in unit.items if running.get(item.key) != node.node_id]
        needs = _sum(item.capacity for item in new)
        if new:
            check = _Check(unit, needs, taken)
            survivors, reasons = _funnel([node], check.capacity_steps())
            if not survivors:
                attached = ", ".join(f"{item.kind} {item.entry}" for item in new)
                raise PlacementError(
                    unit.what,
                    [f"{attached} must go with it on node {node.node_id}, where it runs", *reasons],
                )
        take(unit, node, needs)

    for unit in sorted(pending, key=_size_order):
        check = _Check(unit, unit.capacity, taken, spread_on.get(unit.machine or "", set()))
        if not grid:
            raise PlacementError(unit.what, ["the grid has no nodes"])
        survivors, reasons = _funnel(list(grid.values()), check.all_steps(twin_id, grid.values()))
        if not survivors:
            raise PlacementError(unit.what, reasons)
        best = min(survivors, key=lambda o: (-check.left(o, "mru"), o.node_id))
        take(unit, best, unit.capacity)

    return {item.key: placed[item.key] for item in items}


def _units(spec: Spec, items: Sequence[SpecItem]) -> list[_Unit]:
    attached: dict[str, list[SpecItem]] = {}
    for item in items:
        if item.attached_to is not None:
            attached.setdefault(item.attached_to, []).append(item)
    units = []
    for order, item in enumerate(items):
        if item.attached_to is not None:
            continue
        if item.kind == "machine":
            machine = spec.machine(item.entry)
            what = f"machine {item.entry}"
            if machine.replicas > 1:
                what += f" (replica {item.replica + 1} of {machine.replicas})"
            units.append(
                _Unit(
                    what,
                    (item, *attached.get(item.key, [])),
                    spec.rules_for(machine),
                    item.entry if spec.rules_for(machine).spread else None,
                    order,
                )
            )
        elif item.kind == "zdb":
            zdb = next(z for z in spec.zdbs if z.name == item.entry)
            units.append(_Unit(f"zdb {item.entry}", (item,), spec.rules_for(zdb), None, order))
        elif item.kind == "gateway":
            # The spec's placement is about its workloads' nodes; a gateway's is the grid's.
            unit = _Unit(f"gateway {item.entry}", (item,), PlacementRules(), None, order, True)
            units.append(unit)
        else:
            units.append(_Unit(f"disk {item.entry}", (item,), spec.placement, None, order))
    return units


def _size_order(unit: _Unit) -> tuple[int, int, int, int, int]:
    size = unit.capacity
    return (-size.mru, -size.cru, -size.sru, -size.hru, unit.order)


def _sum(capacities: Iterable[Capacity]) -> Capacity:
    total = Capacity()
    for capacity in capacities:
        total = total + capacity
    return total


def _rented_by_other(node: NodeOffer, twin_id: int) -> bool:
    return node.rented_by not in (0, twin_id)


def _in_farm(node: NodeOffer, farm: int | str) -> bool:
    if isinstance(farm, int):
        return node.farm_id == farm
    return node.farm_name.casefold() == farm.casefold()


def _rule_passes(rules: PlacementRules, node: NodeOffer) -> bool:
    return (
        (not rules.nodes or node.node_id in rules.nodes)
        and (rules.farm is None or _in_farm(node, rules.farm))
        and (rules.country is None or node.country.casefold() == rules.country.casefold())
        and (not rules.certified or node.certified)
    )


def _keeps(unit: _Unit, node: NodeOffer, twin_id: int, spread_on: Mapping[str, set[int]]) -> bool:
    if _rented_by_other(node, twin_id) or not _rule_passes(unit.rules, node):
        return False
    if unit.gateway and not node.domain:
        return False
    return unit.machine is None or node.node_id not in spread_on.get(unit.machine, set())


# -- the funnel: each step keeps some candidates and says why it dropped the others ------------

_Step = Callable[[list[NodeOffer]], tuple[list[NodeOffer], list[str]]]


def _funnel(
    candidates: list[NodeOffer], steps: Iterable[_Step]
) -> tuple[list[NodeOffer], list[str]]:
    """Run ``steps`` in order; the reasons of the steps that dropped candidates."""
    reasons: list[str] = []
    for step in steps:
        if not candidates:
            break
        kept, why = step(candidates)
        if len(kept) < len(candidates):
            reasons.extend(why)
        candidates = kept
    return candidates, reasons


class _Check:
    """The steps placing one unit goes through, with what this plan already took."""

    def __init__(
        self,
        unit: _Unit,
        needs: Capacity,
        taken: Mapping[int, Capacity],
        spread_on: set[int] | None = None,
    ) -> None:
        self.unit = unit
        self.rules = unit.rules
        self.needs = needs
        self.taken = taken
        self.spread_on = spread_on or set()
        self.narrowed = False  # an earlier rule step dropped nodes

    def left(self, node: NodeOffer, resource: str) -> int:
        """Free on ``node`` once this plan's earlier units and this one are there."""
        return self.free(node, resource) - int(getattr(self.needs, resource))

    def free(self, node: NodeOffer, resource: str) -> int:
        before = self.taken.get(node.node_id, Capacity())
        return int(getattr(node.free, resource)) - int(getattr(before, resource))

    def all_steps(self, twin_id: int, grid: Iterable[NodeOffer]) -> list[_Step]:
        everyone = list(grid)
        steps: list[_Step] = [
            self._noting(self._nodes_step(everyone)),
            _status_step,  # "no up node" stays true without the nodes that are not up
            self._noting(lambda c: _rent_step(c, twin_id)),
        ]
        if self.rules.farm is not None:
            steps.append(self._noting(self._farm_step(everyone)))
        if self.rules.country is not None:
            steps.append(self._noting(self._country_step))
        if self.rules.certified:
            steps.append(self._noting(_certified_step))
        if self.unit.machine is not None:
            steps.append(self._noting(self._spread_step))
        if self.unit.gateway:
            steps.append(self._noting(_gateway_step))
        return steps + self.capacity_steps()

    def capacity_steps(self) -> list[_Step]:
        steps: list[_Step] = []
        for resource in _RESOURCES:
            if getattr(self.needs, resource):
                steps.append(self._fit_step(resource))
        for resource in ("cru", "mru", "sru", "hru"):
            minimum = int(getattr(self.rules, f"min_free_{resource}"))
            if minimum:
                steps.append(self._min_free_step(resource, minimum))
        return steps

    def _noting(self, step: _Step) -> _Step:
        def run(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
            kept, why = step(candidates)
            self.narrowed = self.narrowed or len(kept) < len(candidates)
            return kept, why

        return run

    def _nodes_step(self, everyone: list[NodeOffer]) -> _Step:
        def step(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
            allowed = self.rules.nodes
            if not allowed:
                return candidates, []
            kept = [o for o in candidates if o.node_id in allowed]
            known = {o.node_id for o in everyone}
            missing = sorted(set(allowed) - known)
            why = f"placement allows only {_nodes(sorted(set(allowed)))}"
            if missing:
                why += f"; {_nodes(missing)} {_is_are(missing)} not on the grid"
            return kept, [why]

        return step

    def _farm_step(self, everyone: list[NodeOffer]) -> _Step:
        farm = self.rules.farm
        assert farm is not None
        wanted = f"farm {farm}"

        def step(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
            kept = [o for o in candidates if _in_farm(o, farm)]
            out = _dropped(candidates, kept)
            if not out:
                return kept, []
            if not any(_in_farm(o, farm) for o in everyone):
                farms = sorted({(o.farm_id, o.farm_name) for o in everyone})
                listed = ", ".join(f"{i} ({name})" if name else str(i) for i, name in farms)
                return kept, [
                    f"no node of the grid is in {wanted} (the farms with nodes: {listed})"
                ]
            if len(out) == 1:
                node = out[0]
                return kept, [f"node {node.node_id} is in farm {_farm(node, farm)}, not {wanted}"]
            others = ", ".join(sorted({_farm(o, farm) for o in out}))
            return kept, [f"{_nodes(_ids(out))} are in farms {others}, not {wanted}"]

        return step

    def _country_step(self, candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
        country = self.rules.country
        assert country is not None
        kept = [o for o in candidates if o.country.casefold() == country.casefold()]
        out = _dropped(candidates, kept)
        if not out:
            return kept, []
        places = ", ".join(sorted({o.country or "unknown" for o in out}))
        if not kept:
            return kept, [f"no node in country {country} (nodes are in: {places})"]
        return kept, [f"{_nodes(_ids(out))} {_is_are(out)} not in country {country} ({places})"]

    def _spread_step(self, candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
        kept = [o for o in candidates if o.node_id not in self.spread_on]
        used = ", ".join(str(i) for i in sorted(self.spread_on))
        plural = "nodes" if len(self.spread_on) > 1 else "node"
        why = f"spread: replicas already use {plural} {used}"
        if not kept:
            why += " and no other node fits"
        return kept, [why]

    def _fit_step(self, resource: str) -> _Step:
        need = int(getattr(self.needs, resource))

        def step(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
            kept = [o for o in candidates if self.free(o, resource) >= need]
            out = _dropped(candidates, kept)
            if not out:
                return kept, []
            best = min(out, key=lambda o: (-self.free(o, resource), o.node_id))
            largest = f"{_amount(resource, self.free(best, resource))} on node {best.node_id}"
            mine = int(getattr(self.taken.get(best.node_id, Capacity()), resource))
            if mine:
                largest += f" (after the {_amount(resource, mine)} this plan puts there)"
            wanted = _free(resource, need)
            if kept:
                self.narrowed = True
                has = "has" if len(out) == 1 else "have"
                return kept, [
                    f"{_nodes(_ids(out))} {has} less than {wanted}; the largest free is {largest}"
                ]
            who = "no remaining up node" if self.narrowed else "no up node"
            return kept, [f"{who} has {wanted}; the largest free is {largest}"]

        return step

    def _min_free_step(self, resource: str, minimum: int) -> _Step:
        def step(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
            kept = [o for o in candidates if self.left(o, resource) >= minimum]
            out = _dropped(candidates, kept)
            if not out:
                return kept, []
            best = min(out, key=lambda o: (-self.left(o, resource), o.node_id))
            rule = f"min_free_{resource} {_amount(resource, minimum)}"
            left = _free(resource, max(0, self.left(best, resource)))
            self.narrowed = self.narrowed or bool(kept)
            if len(out) == 1:
                return kept, [
                    f"{rule}: node {best.node_id} would keep {left}, "
                    f"less than the {_amount(resource, minimum)} asked"
                ]
            return kept, [
                f"{rule}: {_nodes(_ids(out))} would keep less than that; "
                f"the most left would be {left} on node {best.node_id}"
            ]

        return step


def _status_step(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
    kept = [o for o in candidates if o.status == "up"]
    why = []
    for status, words in (("down", "down"), ("standby", "in standby")):
        out = [o for o in candidates if o.status == status]
        if out:
            why.append(f"{_count(out)} {_is_are(out)} {words} ({_list(_ids(out))})")
    other = [o for o in candidates if o.status not in ("up", "down", "standby")]
    if other:
        why.append(f"{_count(other)} {_is_are(other)} not up ({_list(_ids(other))})")
    return kept, why


def _rent_step(candidates: list[NodeOffer], twin_id: int) -> tuple[list[NodeOffer], list[str]]:
    kept = [o for o in candidates if not _rented_by_other(o, twin_id)]
    out = _dropped(candidates, kept)
    if not out:
        return kept, []
    if len(out) == 1:
        return kept, [f"node {out[0].node_id} is rented by twin {out[0].rented_by}"]
    return kept, [f"{_nodes(_ids(out))} are rented by other twins"]


def _gateway_step(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
    kept = [o for o in candidates if o.domain]
    out = _dropped(candidates, kept)
    if not out:
        return kept, []
    if len(out) == 1:
        return kept, [f"node {out[0].node_id} is no gateway node (no public IP and domain)"]
    return kept, [f"{_nodes(_ids(out))} are no gateway nodes (none has a public IP and a domain)"]


def _certified_step(candidates: list[NodeOffer]) -> tuple[list[NodeOffer], list[str]]:
    kept = [o for o in candidates if o.certified]
    out = _dropped(candidates, kept)
    if not out:
        return kept, []
    if len(out) == 1:
        return kept, [f"node {out[0].node_id} is not in a certified farm"]
    return kept, [f"{_nodes(_ids(out))} are not in certified farms"]


def _dropped(candidates: list[NodeOffer], kept: list[NodeOffer]) -> list[NodeOffer]:
    staying = {o.node_id for o in kept}
    return [o for o in candidates if o.node_id not in staying]


# -- words ----------------------------------------------------------------------------------


def _ids(offers: Iterable[NodeOffer]) -> list[int]:
    return sorted(o.node_id for o in offers)


def _list(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOWN_IDS])
    if len(ids) > _SHOWN_IDS:
        shown += f" and {len(ids) - _SHOWN_IDS} more"
    return shown


def _nodes(ids: Sequence[int]) -> str:
    return f"{'node' if len(ids) == 1 else 'nodes'} {_list(ids)}"


def _count(items: Sequence[object]) -> str:
    return f"{len(items)} {'node' if len(items) == 1 else 'nodes'}"


def _is_are(items: Sequence[object]) -> str:
    return "is" if len(items) == 1 else "are"


def _farm(node: NodeOffer, wanted: int | str) -> str:
    if isinstance(wanted, str) and node.farm_name:
        return f"{node.farm_name} ({node.farm_id})"
    return str(node.farm_id)


def _amount(resource: str, value: int) -> str:
    """``value`` of ``resource``: '4 cores', '20 GiB', '2 public IPv4s'."""
    if resource == "cru":
        return f"{value} {'core' if value == 1 else 'cores'}"
    if resource == "ipv4":
        return f"{value} public {'IPv4' if value == 1 else 'IPv4s'}"
    return size_text(value)


def _free(resource: str, value: int) -> str:
    """'2 free cores', '20 GiB free memory', '1 free public IPv4'."""
    if resource in _BYTES_OF:
        return f"{size_text(value)} free {_BYTES_OF[resource]}"
    return f"{value} free {_amount(resource, value).split(' ', 1)[1]}"


def size_text(value: int) -> str:
    """Bytes as a person reads them, to two decimals, rounded down: 21474836480 -> '20 GiB'."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if abs(value) >= size:
            hundredths = Fraction(abs(value) * 100, size).__floor__()
            whole, part = divmod(hundredths, 100)
            sign = "-" if value < 0 else ""
            text = f"{whole}.{part:02d}".rstrip("0").rstrip(".")
            return f"{sign}{text} {unit}"
    return f"{value} bytes"

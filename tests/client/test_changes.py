"""The diff from a spec, an assignment and what runs to contract changes."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from types import MappingProxyType

import pytest

from zgrid.canonical import canonical_loads
from zgrid.client.changes import CurrentContract, plan_changes
from zgrid.client.errors import FlistNotFound, InvalidWorkload, PlacementError
from zgrid.client.items import spec_items
from zgrid.client.plan import ContractChange, Plan
from zgrid.client.spec.model import DiskSpec, MachineSpec, MountSpec, PlacementRules, Spec, ZdbSpec
from zgrid.types import (
    GIB,
    MIB,
    ZDB,
    Deployment,
    UpdateRefused,
    Workload,
    ZMachine,
    ZMount,
    make_workload,
    parse_deployment,
    validate_update,
)

TWIN = 7
URL = "http://hub.test/flists/3/busybox.fl"
FLISTS = {"busybox": URL}
_contract_ids = itertools.count(100)


def machine(**fields: object) -> MachineSpec:
    values: dict[str, object] = {
        "name": "web",
        "flist": "busybox",
        "memory": 512 * MIB,
        "env": MappingProxyType({"MODE": "one"}),
    }
    values.update(fields)
    return MachineSpec(**values)  # type: ignore[arg-type]


def app(
    *machines: MachineSpec, disks: tuple[DiskSpec, ...] = (), zdbs: tuple[ZdbSpec, ...] = ()
) -> Spec:
    return Spec(name="app", machines=machines, disks=disks, zdbs=zdbs)


def web_app(replicas: int = 2, *, env: str = "one", disk_size: int = GIB) -> Spec:
    """Replicated web machine, each replica with its own disk and zdb."""
    return app(
        machine(
            replicas=replicas,
            env=MappingProxyType({"MODE": env}),
            mounts=(MountSpec("data", "/data"),),
            ssh_keys=("ssh-ed25519 AAAA one", "ssh-ed25519 BBBB two"),
        ),
        disks=(DiskSpec("data", disk_size),),
        zdbs=(ZdbSpec("store", 2 * GIB, machine="web"),),
    )


def spread(spec: Spec, nodes: Mapping[str, int] | None = None) -> dict[str, int]:
    """Each machine replica r on node r+1 (or ``nodes``), its attached items with it."""
    placed = dict(nodes or {})
    items = spec_items(spec)
    for item in items:
        if item.kind == "machine" and item.key not in placed:
            placed[item.key] = item.replica + 1
    for item in items:
        if item.key not in placed:
            placed[item.key] = placed[item.attached_to] if item.attached_to else 1
    return placed


def plan(
    spec: Spec,
    assignment: Mapping[str, int] | None = None,
    current: Mapping[int, CurrentContract] | None = None,
) -> tuple[ContractChange, ...]:
    changes = plan_changes(
        spec,
        spread(spec) if assignment is None else assignment,
        twin_id=TWIN,
        flists=FLISTS,
        current=current or {},
    )
    for change in changes:
        if change.deployment is not None:
            again = parse_deployment(change.deployment.to_json_bytes())
            assert again == change.deployment
    return changes


def carried_out(
    changes: tuple[ContractChange, ...], current: Mapping[int, CurrentContract] | None = None
) -> dict[int, CurrentContract]:
    """What runs once ``changes`` are done: checked against the node's update rules."""
    after = dict(current or {})
    for change in changes:
        if change.action == "cancel":
            del after[change.node_id]
            continue
        assert change.deployment is not None
        if change.action == "create":
            assert change.deployment.version == 0 and change.contract_id == 0
            contract_id = next(_contract_ids)
        else:
            assert change.previous is not None
            contract_id = change.contract_id
            if change.action == "update":
                validate_update(change.previous, change.deployment)
        deployment = change.deployment.model_copy(update={"contract_id": contract_id})
        after[change.node_id] = CurrentContract(contract_id, deployment)
    return after


def by_node(changes: tuple[ContractChange, ...]) -> dict[int, ContractChange]:
    return {change.node_id: change for change in changes}


def named(deployment: Deployment | None) -> dict[str, Workload]:
    assert deployment is not None
    return {workload.name: workload for workload in deployment.workloads}


def actions(change: ContractChange) -> dict[str, tuple[str, str]]:
    return {w.key: (w.action, w.name) for w in change.workloads}


def as_plan(changes: tuple[ContractChange, ...]) -> Plan:
    return Plan("app", "devnet", changes, price_usd=0, price_tokens=0, token_price=1)  # type: ignore[arg-type]


# -- create --------------------------------------------------------------------------------


def test_two_replicas_on_two_nodes_are_two_creates_with_their_disk_and_zdb() -> None:
    changes = plan(web_app())
    assert [(c.action, c.node_id, c.contract_id) for c in changes] == [
        ("create", 1, 0),
        ("create", 2, 0),
    ]
    for replica, change in enumerate(changes):
        deployment = change.deployment
        assert deployment is not None and change.previous is None
        assert deployment.version == 0 and deployment.contract_id == 0
        assert deployment.twin_id == TWIN
        assert canonical_loads(deployment.metadata) == {"name": "app"}
        assert deployment.metadata == '{"name":"app"}'
        requirement = deployment.signature_requirement
        assert [(r.twin_id, r.weight, r.required) for r in requirement.requests] == [
            (TWIN, 1, False)
        ]
        assert requirement.weight_required == 1
        # install order: the disk, the zdb, then the machine that mounts the disk
        assert [(w.type, w.name) for w in deployment.workloads] == [
            ("zmount", f"data_{replica}"),
            ("zdb", f"store_{replica}"),
            ("zmachine", f"web_{replica}"),
        ]
        assert [w.version for w in deployment.workloads] == [0, 0, 0]
        keys = [canonical_loads(w.metadata) for w in deployment.workloads]
        assert keys == [
            {"key": f"disk/data/{replica}"},
            {"key": f"zdb/store/{replica}"},
            {"key": f"machine/web/{replica}"},
        ]
        assert all(w.action == "create" for w in change.workloads)
        web = named(deployment)[f"web_{replica}"].data
        assert isinstance(web, ZMachine)
        assert web.flist == URL
        assert (web.compute_capacity.cpu, web.compute_capacity.memory) == (1, 512 * MIB)
        assert [(m.name, m.mountpoint) for m in web.mounts] == [(f"data_{replica}", "/data")]
        assert web.env == {"MODE": "one", "SSH_KEY": "ssh-ed25519 AAAA one\nssh-ed25519 BBBB two"}
        assert web.network.planetary and web.network.interfaces == []
        disk = named(deployment)[f"data_{replica}"].data
        assert isinstance(disk, ZMount) and disk.size == GIB
        store = named(deployment)[f"store_{replica}"].data
        assert isinstance(store, ZDB) and store.size == 2 * GIB and store.mode == "user"
        assert len(store.password) == 32 and int(store.password, 16) >= 0
    assert change.price == 0


def test_a_single_item_is_named_after_its_entry_and_keeps_the_spec_values() -> None:
    spec = app(
        machine(
            cpu=2, memory=GIB, disk=3 * GIB, entrypoint="/bin/sh -c 'sleep 1'", planetary=False
        ),
        zdbs=(ZdbSpec("keys", GIB, mode="seq", public=True, password="secret"),),
    )
    (change,) = plan(spec, {"machine/web/0": 4, "zdb/keys/0": 4})
    workloads = named(change.deployment)
    assert list(workloads) == ["keys", "web"]
    web = workloads["web"].data
    assert isinstance(web, ZMachine)
    assert web.size == 3 * GIB and web.entrypoint == "/bin/sh -c 'sleep 1'"
    assert not web.network.planetary
    assert "SSH_KEY" not in web.env  # no keys given: nothing to authorize
    keys = workloads["keys"].data
    assert keys == ZDB(size=GIB, mode="seq", public=True, password="secret")


# -- apply ---------------------------------------------------------------------------------


def test_an_env_change_replaces_only_that_machine_and_keeps_everything_else() -> None:
    running = carried_out(plan(web_app()))
    changes = plan(web_app(env="two"), current=running)
    first, second = changes
    assert (first.action, second.action) == ("update", "update")
    for replica, change in enumerate(changes):
        assert change.contract_id == running[change.node_id].contract_id
        assert change.deployment is not None and change.deployment.version == 1
        assert change.deployment.contract_id == change.contract_id
        assert actions(change) == {
            f"disk/data/{replica}": ("keep", f"data_{replica}"),
            f"zdb/store/{replica}": ("keep", f"store_{replica}"),
            f"machine/web/{replica}": ("replace", f"web_{replica}_g1"),
        }
        (replaced,) = [w for w in change.workloads if w.action == "replace"]
        assert replaced.old_name == f"web_{replica}" and replaced.reason == "env changed"
        new = named(change.deployment)
        old = named(running[change.node_id].deployment)
        assert f"web_{replica}" not in new
        assert new[f"web_{replica}_g1"].version == 1
        assert new[f"data_{replica}"] is old[f"data_{replica}"]
        assert new[f"store_{replica}"] is old[f"store_{replica}"]
        assert new[f"data_{replica}"].version == 0 and new[f"store_{replica}"].version == 0
        update = validate_update(running[change.node_id].deployment, change.deployment)
        assert update.added == (f"web_{replica}_g1",)
        assert update.removed == (f"web_{replica}",)
        assert set(update.unchanged) == {f"data_{replica}", f"store_{replica}"}
        assert update.updated == ()


def test_updating_a_machine_in_place_would_be_refused_by_the_node() -> None:
    """Why a changed zmachine is replaced: the same name with new data is refused."""
    running = carried_out(plan(web_app(1)))
    (change,) = plan(web_app(1, env="two"), current=running)
    assert change.deployment is not None
    renamed = [
        w.model_copy(update={"name": "web"}) if w.type == "zmachine" else w
        for w in change.deployment.workloads
    ]
    in_place = change.deployment.model_copy(update={"workloads": renamed})
    with pytest.raises(UpdateRefused, match="cannot change its data"):
        validate_update(running[1].deployment, in_place)


def test_a_second_replace_takes_the_next_free_name() -> None:
    running = carried_out(plan(web_app(1)))
    running = carried_out(plan(web_app(1, env="two"), current=running), running)
    (change,) = plan(web_app(1, env="three"), current=running)
    assert actions(change)["machine/web/0"] == ("replace", "web_g2")
    assert [w.old_name for w in change.workloads if w.action == "replace"] == ["web_g1"]
    running = carried_out((change,), running)
    (change,) = plan(web_app(1, env="four"), current=running)
    assert actions(change)["machine/web/0"] == ("replace", "web_g1")  # web_g1 is free again


def test_a_disk_added_and_mounted_is_created_and_its_machine_replaced() -> None:
    running = carried_out(plan(app(machine())))
    spec = app(machine(mounts=(MountSpec("logs", "/var/log"),)), disks=(DiskSpec("logs", GIB),))
    (change,) = plan(spec, current=running)
    assert change.action == "update"
    assert actions(change) == {
        "disk/logs/0": ("create", "logs"),
        "machine/web/0": ("replace", "web_g1"),
    }
    reasons = {w.key: w.reason for w in change.workloads}
    assert reasons["machine/web/0"] == "mounts changed"
    assert change.deployment is not None
    web = named(change.deployment)["web_g1"].data
    assert isinstance(web, ZMachine)
    assert [(m.name, m.mountpoint) for m in web.mounts] == [("logs", "/var/log")]
    assert [w.version for w in change.deployment.workloads] == [1, 1]
    validate_update(running[1].deployment, change.deployment)


def test_a_disk_size_change_updates_the_zmount_in_place() -> None:
    running = carried_out(plan(web_app()))
    changes = plan(web_app(disk_size=2 * GIB), current=running)
    for replica, change in enumerate(changes):
        assert actions(change) == {
            f"disk/data/{replica}": ("update", f"data_{replica}"),
            f"zdb/store/{replica}": ("keep", f"store_{replica}"),
            f"machine/web/{replica}": ("keep", f"web_{replica}"),
        }
        (updated,) = [w for w in change.workloads if w.action == "update"]
        assert updated.reason == "size 1 GiB -> 2 GiB"
        assert change.deployment is not None
        disk = named(change.deployment)[f"data_{replica}"]
        assert disk.version == 1 and disk.data == ZMount(size=2 * GIB)
        assert named(change.deployment)[f"web_{replica}"].version == 0
        update = validate_update(running[change.node_id].deployment, change.deployment)
        assert update.updated == (f"data_{replica}",)


def test_a_zdb_keeps_its_made_password_across_applies() -> None:
    first = carried_out(plan(web_app()))
    passwords = {
        node: named(contract.deployment)[f"store_{node - 1}"].data.password  # type: ignore[union-attr]
        for node, contract in first.items()
    }
    assert len(set(passwords.values())) == 2  # each replica's zdb has its own
    again = carried_out(plan(web_app(env="two"), current=first), first)
    for node, contract in again.items():
        store = named(contract.deployment)[f"store_{node - 1}"]
        assert isinstance(store.data, ZDB) and store.data.password == passwords[node]
    # made anew for a zdb nothing runs for: not a constant
    fresh = plan(web_app())
    made = named(fresh[0].deployment)["store_0"].data
    assert isinstance(made, ZDB) and made.password != passwords[1]


def test_a_zdb_password_the_spec_gives_is_used_and_a_change_updates_it() -> None:
    def spec(password: str) -> Spec:
        return app(zdbs=(ZdbSpec("keys", GIB, password=password),))

    running = carried_out(plan(spec("first"), {"zdb/keys/0": 1}))
    (change,) = plan(spec("second"), {"zdb/keys/0": 1}, current=running)
    assert actions(change) == {"zdb/keys/0": ("update", "keys")}
    assert [w.reason for w in change.workloads] == ["password changed"]
    assert named(change.deployment)["keys"].data == ZDB(size=GIB, password="second")


def test_a_removed_replica_cancels_its_node_and_the_rest_is_kept() -> None:
    running = carried_out(plan(web_app()))
    changes = by_node(plan(web_app(1), current=running))
    assert changes[1].action == "keep"
    assert changes[1].deployment is running[1].deployment
    assert changes[2].action == "cancel" and changes[2].deployment is None
    assert changes[2].contract_id == running[2].contract_id
    assert changes[2].previous is running[2].deployment
    assert sorted(actions(changes[2]).values()) == [
        ("remove", "data_1"),
        ("remove", "store_1"),
        ("remove", "web_1"),
    ]


def test_a_removed_item_on_a_node_that_keeps_others_is_removed_in_an_update() -> None:
    one_node = {"machine/web/0": 1, "machine/api/0": 1}
    both = app(machine(), machine(name="api"))
    running = carried_out(plan(both, one_node))
    (change,) = plan(app(machine()), {"machine/web/0": 1}, current=running)
    assert change.action == "update"
    assert actions(change) == {"machine/web/0": ("keep", "web"), "machine/api/0": ("remove", "api")}
    assert change.deployment is not None
    assert [w.name for w in change.deployment.workloads] == ["web"]
    update = validate_update(running[1].deployment, change.deployment)
    assert update.removed == ("api",) and update.unchanged == ("web",)


def test_nothing_changed_keeps_every_contract_and_the_plan_is_empty() -> None:
    running = carried_out(plan(web_app()))
    changes = plan(web_app(), current=running)
    assert [c.action for c in changes] == ["keep", "keep"]
    for change in changes:
        assert change.deployment is running[change.node_id].deployment
        assert all(w.action == "keep" for w in change.workloads)
    assert as_plan(changes).empty
    assert not as_plan(plan(web_app(env="two"), current=running)).empty


def test_an_item_moved_to_another_node_leaves_the_old_one() -> None:
    spec = app(machine())
    running = carried_out(plan(spec, {"machine/web/0": 1}))
    changes = by_node(plan(spec, {"machine/web/0": 3}, current=running))
    assert changes[1].action == "cancel"
    assert changes[3].action == "create"
    assert actions(changes[3]) == {"machine/web/0": ("create", "web")}


# -- names ---------------------------------------------------------------------------------


def foreign(name: str, key: str | None) -> CurrentContract:
    """A deployment with one zmount named ``name`` made for ``key``."""
    metadata = "" if key is None else f'{{"key":"{key}"}}'
    workload = make_workload(name, ZMount(size=GIB), metadata=metadata)
    deployment = Deployment.model_validate(
        {
            "twin_id": TWIN,
            "contract_id": 55,
            "metadata": '{"name":"app"}',
            "signature_requirement": {"requests": [{"twin_id": TWIN}]},
            "workloads": [workload],
        }
    )
    return CurrentContract(55, deployment)


def test_a_name_taken_by_another_key_gets_a_suffix() -> None:
    running = {1: foreign("web", "disk/old/0")}
    (change,) = plan(app(machine()), {"machine/web/0": 1}, current=running)
    assert change.action == "update"
    assert actions(change) == {
        "machine/web/0": ("create", "web_g1"),
        "disk/old/0": ("remove", "web"),
    }
    assert change.deployment is not None
    validate_update(running[1].deployment, change.deployment)


def test_a_workload_without_a_key_is_removed_and_its_name_not_reused() -> None:
    running = {1: foreign("web", None)}
    (change,) = plan(app(machine()), {"machine/web/0": 1}, current=running)
    assert actions(change) == {"machine/web/0": ("create", "web_g1"), "": ("remove", "web")}


def test_entry_names_that_meet_get_distinct_workload_names() -> None:
    # "a" with two replicas is a_0 and a_1; a machine named "a_1" would be a_1 too
    spec = app(
        machine(name="a", replicas=2, placement=PlacementRules(spread=False)), machine(name="a_1")
    )
    assignment = {"machine/a/0": 1, "machine/a/1": 1, "machine/a_1/0": 1}
    (change,) = plan(spec, assignment)
    assert actions(change) == {
        "machine/a/0": ("create", "a_0"),
        "machine/a/1": ("create", "a_1"),
        "machine/a_1/0": ("create", "a_1_g1"),
    }


# -- refused inputs and determinism --------------------------------------------------------


def test_an_assignment_that_misses_or_splits_items_is_refused() -> None:
    spec = web_app()
    whole = spread(spec)
    missing = {key: node for key, node in whole.items() if key != "zdb/store/1"}
    with pytest.raises(PlacementError, match=r"zdb/store/1: no node was chosen"):
        plan(spec, missing)
    with pytest.raises(PlacementError, match=r"disk/data/0: it goes with machine/web/0 on node 1"):
        plan(spec, {**whole, "disk/data/0": 2})
    with pytest.raises(PlacementError, match="not an item"):
        plan(spec, {**whole, "machine/ghost/0": 1})
    with pytest.raises(PlacementError, match="positive"):
        plan(spec, {**whole, "machine/web/0": 0})


def test_an_unresolved_flist_is_refused() -> None:
    spec = app(machine(flist="alpine"))
    with pytest.raises(FlistNotFound, match="'alpine' of machine 'web'"):
        plan(spec, {"machine/web/0": 1})


def test_an_entry_the_node_would_refuse_is_a_clear_error() -> None:
    with pytest.raises(InvalidWorkload, match=r"machine 'web'.*memory must be at least 250 MiB"):
        plan(app(machine(memory=100 * MIB)), {"machine/web/0": 1})
    with pytest.raises(InvalidWorkload, match="environment variable name"):
        plan(app(machine(env=MappingProxyType({"BAD NAME": "x"}))), {"machine/web/0": 1})


def test_the_same_inputs_give_the_same_changes() -> None:
    spec = dataclasses.replace(
        web_app(), zdbs=(ZdbSpec("store", GIB, machine="web", password="p"),)
    )
    running = carried_out(plan(spec))
    changed = dataclasses.replace(
        spec, machines=(machine(replicas=2, mounts=(MountSpec("data", "/d"),)),)
    )
    assert plan(changed, current=running) == plan(changed, current=running)
    assert plan(spec) == plan(spec)


def test_a_zdb_moved_to_another_node_keeps_its_password() -> None:
    spec = app(zdbs=(ZdbSpec("keys", GIB),))
    running = carried_out(plan(spec, {"zdb/keys/0": 1}))
    before = named(running[1].deployment)["keys"].data
    changes = by_node(plan(spec, {"zdb/keys/0": 2}, current=running))
    assert (changes[1].action, changes[2].action) == ("cancel", "create")
    after = named(changes[2].deployment)["keys"].data
    assert isinstance(before, ZDB) and isinstance(after, ZDB)
    assert after.password == before.password


def test_a_replace_says_every_field_that_changed() -> None:
    running = carried_out(plan(app(machine())))
    changed = app(machine(cpu=2, memory=GIB, disk=2 * GIB, entrypoint="/bin/true"))
    flists = {"busybox": "http://hub.test/flists/3/alpine.fl"}
    (change,) = plan_changes(
        changed, {"machine/web/0": 1}, twin_id=TWIN, flists=flists, current=running
    )
    (replaced,) = change.workloads
    assert replaced.action == "replace"
    assert replaced.reason == (
        "flist changed, cpu 1 -> 2, memory 512 MiB -> 1 GiB, root disk the smallest -> 2 GiB, "
        "entrypoint changed"
    )

"""The deployer's client end to end: `zgrid plan/deploy/apply/show/logs/destroy` in a client
host against a real ledger, hub and two node daemons running runc containers.

``deployer.run`` and ``deployer.popen`` start the console script in the client host (plan,
deploy, apply, logs and destroy each once at least, and every signal and kill);
``deployer.here`` and ``deployer.json`` run the same commands in-process
(tests/client/deploying.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.client.deploying import Deployer
from tests.node.grid import Grid, NodeDaemon, module_grid
from tests.node.hosts import HostNetwork
from zgrid.chain import ChainClient, SyncChainClient
from zgrid.client import DeployFailed, SyncGrid, Unlocker
from zgrid.identity import Identity
from zgrid.types import ZMount, make_workload

GIB = 1 << 30
MIB = 1 << 20

SHOP = """\
name: shop
machines:
  - name: web
    flist: busybox
    memory: 256MiB
    replicas: 2
    env: {{GREETING: {greeting}}}
    entrypoint: >-
      /bin/sh -c 'echo started $GREETING; mkdir -p /www;
      echo "$GREETING from zgrid" > /www/index.html;
      exec busybox httpd -f -p [::]:8080 -h /www'
  - name: worker
    flist: busybox
    memory: 256MiB
    env: {{MODE: {mode}}}
    entrypoint: /bin/sh -c 'echo mode $MODE; exec sleep 100000'
{disks}zdbs:
  - {{name: store, size: 1GiB}}
"""


@pytest.fixture(scope="module")
def grid(host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grid]:
    yield from module_grid(host_network, tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def nodes(grid: Grid) -> list[NodeDaemon]:
    return grid.add_nodes("node1", "node2")


@pytest.fixture(scope="module")
def deployer(
    grid: Grid, nodes: list[NodeDaemon], tmp_path_factory: pytest.TempPathFactory
) -> Deployer:
    return Deployer(grid, tmp_path_factory.mktemp("deployer") / "home").setup()


def _page(grid: Grid, ip: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        done = grid.client.http_get(f"http://[{ip}]:8080/")
        if done.returncode == 0:
            return done.stdout
        last = done.stderr
        time.sleep(0.5)
    raise AssertionError(f"no page at [{ip}]:8080 within {timeout} s: {last}")


def _by_name(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in view["workloads"]}


PRICED = """\
name: priced
machines:
  - name: api
    flist: busybox
    cpu: 1
    memory: 1GiB
    disk: 2GiB
    replicas: 2
    disks: [{disk: data, mountpoint: /data}]
disks:
  - {name: data, size: 10GiB}
zdbs:
  - {name: cache, size: 5GiB, machine: api}
"""


def test_plan_prices_each_contract_by_the_pricing_policy(grid: Grid, deployer: Deployer) -> None:
    plan = deployer.json("plan", str(deployer.spec("priced", PRICED)))
    assert len(plan["contracts"]) == 2  # one replica (with its disk and zdb) per node
    with SyncChainClient(grid.ledger.url) as chain:
        genesis = chain.genesis()
    policy = genesis["price_policies"][0]
    total = Fraction(0)
    for contract in plan["contracts"]:
        kinds = sorted(w["key"].split("/")[0] for w in contract["workloads"])
        assert kinds == ["disk", "machine", "zdb"], contract
        # Per contract: 1 core, 1 GiB memory; SSD 2 GiB root + 10 GiB disk; HDD 5 GiB.
        cru, memory, ssd, hdd = 1, Fraction(1), Fraction(12), Fraction(5)
        cu = min(
            max(memory / 4, Fraction(cru, 2)),
            max(memory / 8, cru),
            max(memory / 2, Fraction(cru, 4)),
        )
        su = hdd / 1200 + ssd / 200
        price = cu * policy["cu"] + su * policy["su"]  # units USD per hour
        assert contract["price_usd_per_hour"] == _decimal(price / 10_000_000)
        total += price
    assert plan["price_usd_per_hour"] == _decimal(total / 10_000_000)
    assert plan["price_tokens_per_hour"] == _decimal(total / genesis["token_price"])
    assert deployer.live_contracts() == [] and deployer.json("ls") == [], "a plan writes nothing"
    shown = deployer.run("plan", str(deployer.spec("priced", PRICED)))
    assert shown.returncode == 0 and "USD per hour" in shown.stdout, shown


def test_a_two_replica_spec_runs_on_two_nodes_and_serves_both_pages(
    grid: Grid, deployer: Deployer
) -> None:
    spec = deployer.spec("shop", SHOP.format(greeting="hello", mode="a", disks=""))
    view = deployer.json("deploy", str(spec))
    workloads = _by_name(view)
    assert {w["state"] for w in workloads.values()} == {"ok"}, view
    web = [w for w in view["workloads"] if w["key"].startswith("machine/web/")]
    assert len(web) == 2
    assert len({w["node_id"] for w in web}) == 2, "spread: the replicas are on distinct nodes"
    for workload in web:
        assert "hello from zgrid" in _page(grid, workload["planetary_ip"])
    shown = deployer.json("show", "shop")
    assert _by_name(shown).keys() == workloads.keys()
    listed = deployer.json("ls")
    assert [(d["name"], d["status"]) for d in listed] == [("shop", "deployed")]


def test_logs_come_through_the_nodes_log_channel(deployer: Deployer) -> None:
    shown = deployer.json("show", "shop")
    worker = next(w for w in shown["workloads"] if w["key"] == "machine/worker/0")
    deadline = time.monotonic() + 30
    done = None
    while time.monotonic() < deadline:
        done = deployer.run("logs", f"shop/{worker['name']}")
        if done.returncode == 0 and "mode a" in done.stdout:
            break
        time.sleep(0.5)
    assert done is not None and "mode a" in done.stdout, done
    ambiguous = deployer.run("logs", "shop/web")
    assert ambiguous.returncode == 1 and "ambiguous" in ambiguous.stderr


def test_apply_touches_only_what_changed(grid: Grid, deployer: Deployer) -> None:
    before = deployer.json("show", "shop")
    old = _by_name(before)
    contracts_before = {c["id"]: c["version"] for c in before["contracts"]}
    spec = deployer.spec(
        "shop",
        SHOP.format(
            greeting="hello",
            mode="b",
            disks="disks:\n  - {name: scratch, size: 1GiB}\n",
        ),
    )
    plan = deployer.json("plan", str(spec))
    actions = {w["key"]: w["action"] for c in plan["contracts"] for w in c["workloads"]}
    assert actions["machine/worker/0"] == "replace"
    assert actions["disk/scratch/0"] == "create"
    assert {actions[k] for k in ("machine/web/0", "machine/web/1", "zdb/store/0")} == {"keep"}
    after = deployer.json("apply", str(spec), "--yes")
    new = _by_name(after)
    assert {w["state"] for w in new.values()} == {"ok"}, after
    # The kept workloads are the very same: same name, same version, same node.
    for key in ("machine/web/0", "machine/web/1", "zdb/store/0"):
        (was,) = [w for w in old.values() if w["key"] == key]
        (now,) = [w for w in new.values() if w["key"] == key]
        assert (now["name"], now["version"], now["node_id"]) == (
            was["name"], was["version"], was["node_id"],
        )  # fmt: skip
    (worker,) = [w for w in new.values() if w["key"] == "machine/worker/0"]
    (old_worker,) = [w for w in old.values() if w["key"] == "machine/worker/0"]
    assert worker["name"] != old_worker["name"] and worker["version"] > old_worker["version"]
    # Only contracts holding a changed workload went to a new version.
    changed_nodes = {worker["node_id"], new["scratch"]["node_id"]}
    for contract in after["contracts"]:
        if contract["id"] in contracts_before and contract["node_id"] not in changed_nodes:
            assert contract["version"] == contracts_before[contract["id"]]
    for workload in (w for w in new.values() if w["key"].startswith("machine/web/")):
        assert "hello from zgrid" in _page(grid, workload["planetary_ip"])
    again = deployer.run("apply", str(spec), "--yes")
    assert again.returncode == 0 and "nothing to change" in again.stdout


def _decimal(value: Fraction) -> str:
    scaled = (value * 10**7 * 2 + 1) // 2
    whole, fraction = divmod(int(scaled), 10**7)
    return f"{whole}.{fraction:07d}".rstrip("0").rstrip(".")


def test_destroy_leaves_no_live_contract(deployer: Deployer) -> None:
    assert deployer.live_contracts()
    done = deployer.run("destroy", "shop", "--yes")
    assert done.returncode == 0, done.stderr
    assert deployer.live_contracts() == []
    assert deployer.json("ls") == []


def test_a_second_machine_that_fits_nowhere_creates_nothing_and_says_why(
    deployer: Deployer,
) -> None:
    spec = deployer.spec(
        "toobig",
        """\
        name: toobig
        machines:
          - {name: small, flist: busybox, memory: 256MiB}
          - {name: huge, flist: busybox, memory: 400GiB}
        """,
    )
    done = deployer.here("deploy", str(spec))
    assert done.returncode == 1, done
    assert "huge" in done.stderr and "400 GiB" in done.stderr and "largest free" in done.stderr
    assert deployer.live_contracts() == []
    assert deployer.json("ls") == []


def test_a_second_machine_failing_on_its_node_rolls_back_the_first(
    grid: Grid, deployer: Deployer
) -> None:
    # Not on the hub, so the client cannot check it first: the node finds out.
    missing = f"{grid.ledger.url}/no-such-image.fl"
    spec = deployer.spec(
        "broken",
        f"""\
        name: broken
        machines:
          - {{name: good, flist: busybox, memory: 256MiB, entrypoint: /bin/sh -c 'exec sleep 100000'}}
          - {{name: bad, flist: "{missing}", memory: 256MiB}}
        placement: {{spread: true}}
        """,
    )
    done = deployer.run("deploy", str(spec))
    assert done.returncode == 1, done
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "bad (zmachine)" in error and "not found" in error and "rolled back" in error, error
    assert "good (zmachine)" not in error, "only the machine that failed is blamed"
    assert "stamina" not in done.stderr and "Traceback" not in done.stderr
    assert deployer.live_contracts() == []
    assert deployer.json("ls") == []


def test_a_deploy_killed_halfway_is_cleaned_by_destroy(
    grid: Grid, deployer: Deployer, tmp_path: Path
) -> None:
    spec = deployer.spec(
        "killed",
        SHOP.format(greeting="k", mode="k", disks="").replace("name: shop", "name: killed"),
    )
    process = deployer.popen("deploy", str(spec), log=tmp_path / "deploy.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not deployer.live_contracts():
        time.sleep(0.05)
    assert deployer.live_contracts(), (tmp_path / "deploy.log").read_text()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    listed = {d["name"]: d for d in deployer.json("ls")}
    assert listed["killed"]["status"] == "interrupted"
    done = deployer.here("destroy", "killed", "--yes")
    assert done.returncode == 0, done.stderr
    time.sleep(1.0)  # a creation the killed run had sent may land in the next block
    assert deployer.live_contracts() == [], json.dumps(deployer.live_contracts())


def test_ctrl_c_during_a_deploy_rolls_back_and_exits_130(
    deployer: Deployer, tmp_path: Path
) -> None:
    spec = deployer.spec(
        "interrupted",
        SHOP.format(greeting="i", mode="i", disks="").replace("name: shop", "name: interrupted"),
    )
    log = tmp_path / "deploy.log"
    process = deployer.popen("deploy", str(spec), log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not deployer.live_contracts():
        time.sleep(0.05)
    assert deployer.live_contracts(), log.read_text()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130, log.read_text()
    assert "rolling back" in log.read_text()
    assert deployer.live_contracts() == [], log.read_text()
    assert "interrupted" not in {d["name"] for d in deployer.json("ls")}


def test_the_ledger_refusing_the_second_contract_cancels_the_first(
    grid: Grid, nodes: list[NodeDaemon], deployer: Deployer
) -> None:
    spec = deployer.spec(
        "stale",
        """\
        name: stale
        machines:
          - {name: app, flist: busybox, memory: 2GiB, replicas: 2, entrypoint: /bin/sh -c 'exec sleep 100000'}
        """,
    )
    with SyncGrid.open(deployer.home, unlocker=Unlocker.from_env(os.environ)) as sdk:
        plan = sdk.plan(spec)
        assert [c.action for c in plan.changes] == ["create", "create"]
        # Between the plan and the deploy, someone else takes the second node's memory.
        other, taken = asyncio.run(_occupy(grid, plan.changes[1].node_id, 3 * GIB))
        try:
            with pytest.raises(DeployFailed) as failed:
                sdk.apply(spec, plan=plan)
            assert "refused" in str(failed.value) and "rolled back" in str(failed.value)
            assert deployer.live_contracts() == []
            assert "stale" not in {d.name for d in sdk.deployments()}
        finally:
            asyncio.run(_cancel(grid, other, taken))


async def _occupy(grid: Grid, node_id: int, memory: int) -> tuple[Identity, int]:
    """Another deployer's contract holding ``memory`` on ``node_id``."""
    from tests.node.deployer import create, deployment_of  # noqa: PLC0415

    other = await grid.deployer()
    try:
        disk = make_workload("disk", ZMount(size=GIB))
        deployment = deployment_of(other.twin_id, [disk])
        taken = await create(other, node_id, deployment, capacity={"mru": memory, "sru": GIB})
    finally:
        await other.chain.close()
    return other.identity, taken


async def _cancel(grid: Grid, identity: Identity, contract_id: int) -> None:
    async with ChainClient(grid.ledger.url, identity=identity) as chain:
        await chain.cancel_contract(contract_id)


def test_an_update_the_node_refuses_is_rolled_back_to_what_ran(deployer: Deployer) -> None:
    spec = """\
    name: resize
    machines:
      - {name: app, flist: busybox, memory: 256MiB, entrypoint: /bin/sh -c 'exec sleep 100000',
         disks: [{disk: data, mountpoint: /data}]}
    disks:
      - {name: data, size: SIZE}
    """
    deployed = deployer.json("deploy", str(deployer.spec("resize", spec.replace("SIZE", "2GiB"))))
    before = _by_name(deployed)
    assert {w["state"] for w in before.values()} == {"ok"}
    shrunk = deployer.here(
        "apply", "--yes", str(deployer.spec("resize", spec.replace("SIZE", "1GiB")))
    )
    assert shrunk.returncode == 1, shrunk
    assert "data" in shrunk.stderr and "rolled back" in shrunk.stderr, shrunk.stderr
    after = deployer.json("show", "resize")
    assert {w["state"] for w in after["workloads"]} == {"ok"}, after
    assert {w["key"] for w in after["workloads"]} == {w["key"] for w in before.values()}
    assert deployer.here("destroy", "resize", "--yes").returncode == 0
    assert deployer.live_contracts() == []


def test_the_sdk_example_runs_as_documented(grid: Grid, deployer: Deployer) -> None:
    root = Path(__file__).resolve().parents[2]
    done = grid.client.exec(
        [
            sys.executable,
            str(root / "examples" / "sdk_deploy.py"),
            str(root / "examples" / "web-replicas.yaml"),
        ],
        timeout=240,
        env={"ZGRID_HOME": str(deployer.home), "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr
    assert "USD per hour" in done.stdout and "destroyed: contracts" in done.stdout, done.stdout
    assert deployer.live_contracts() == []


def test_an_apply_killed_halfway_is_taken_over_by_the_next_apply(
    deployer: Deployer, tmp_path: Path
) -> None:
    spec = """\
    name: resume
    machines:
      - {name: app, flist: busybox, memory: 256MiB, env: {MODE: MODE_VALUE},
         entrypoint: /bin/sh -c 'echo $MODE; exec sleep 100000'}
    """
    first = deployer.json("deploy", str(deployer.spec("resume", spec.replace("MODE_VALUE", "a"))))
    (contract,) = first["contracts"]
    changed = deployer.spec("resume", spec.replace("MODE_VALUE", "b"))
    process = deployer.popen("apply", "--yes", str(changed), log=tmp_path / "apply.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        live = {c["id"]: c for c in deployer.live_contracts()}
        if live[contract["id"]]["version"] > contract["version"]:
            break  # the update reached the ledger: kill the run before it settles
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert {d["name"]: d["status"] for d in deployer.json("ls")}["resume"] == "interrupted"
    again = deployer.run("apply", "--yes", "--json", str(changed))
    assert again.returncode == 0, again.stderr
    shown = deployer.json("show", "resume")
    assert shown["status"] == "deployed" and {w["state"] for w in shown["workloads"]} == {"ok"}
    assert [c["id"] for c in deployer.live_contracts()] == [contract["id"]]
    assert deployer.here("apply", "--yes", str(changed)).stdout.startswith("nothing to change")
    assert deployer.here("destroy", "resume", "--yes").returncode == 0
    assert deployer.live_contracts() == []

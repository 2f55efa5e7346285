"""Deployment benchmark: contract submission → state `ok` → first HTTP answer, per container.

It starts, on this machine: a ledger (1 s blocks), an flist hub with a busybox flist, one
node daemon in its own network namespace and a client namespace on yggdrasil (the same
harness as the node's tests). Then it deploys N busybox-httpd containers one after the
other, twice:

* cold: before each deployment the node's flist mounts and block cache are emptied, so
  the image's blocks come from the hub;
* warm: the image is already mounted (the usual case for a popular image).

For each deployment it times: ledger inclusion (submit → included), node provisioning
(the node saw the contract → it reported, from the node's own result), the report's
inclusion and reading (→ state ok), and ok → first HTTP answer over the planetary
network from the client namespace. It prints p50/p95 per phase.

Targets on this machine with 1 s blocks: warm p50 submission → ok ≤ 1.5 s, cold ≤ 3 s.
For comparison, the ThreeFold Grid's first VM takes minutes. There is no other grid to
run side by side on one machine, so the figures stand alone (the note compares them).

Run as root from the project root: ``.venv/bin/python bench/deploy.py [--count 20] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.node.deployer import create, deployment_of, wait_result
from tests.node.grid import Grid, NodeDaemon
from tests.node.hosts import HostNetwork
from zgrid.types import MIB, ComputeCapacity, MachineNetwork, ZMachine, make_workload

PAGE = "bench page"
SCRIPT = f"mkdir -p /www && echo {PAGE} > /www/index.html; exec busybox httpd -f -p [::]:80 -h /www"
WARM_TARGET, COLD_TARGET = 1.5, 3.0
BLOCK_TIME = 1.0


@dataclass
class Sample:
    mode: str
    inclusion: float  # submit -> contract in a committed block
    node: float  # the node's own time from seeing the contract to its report
    report: float  # event delivery to the node and its report readable (to_ok - the two above)
    to_ok: float  # submit -> the client reads state ok
    to_http: float  # submit -> first HTTP answer from the client namespace


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _http(grid: Grid, address: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = grid.client.http_get(f"http://[{address}]/", timeout=2)
        if done.returncode == 0 and PAGE in done.stdout:
            return
        time.sleep(0.02)
    raise RuntimeError(f"no HTTP answer from [{address}] within {timeout} s")


def _make_cold(node: NodeDaemon) -> None:
    """Empty the node's image mounts and block cache (the next deployment fetches blocks)."""
    cache = node.data / "flists" / "blocks"
    shutil.rmtree(cache, ignore_errors=True)
    lowers = node.data / "flists" / "lowers"
    if lowers.is_dir():
        for mountpoint in lowers.iterdir():
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


async def _one(grid: Grid, node: NodeDaemon, mode: str, index: int) -> Sample:
    twin = await grid.deployer()
    machine = make_workload(
        f"web{index}",
        ZMachine(
            flist=grid.busybox_url,
            compute_capacity=ComputeCapacity(cpu=1, memory=256 * MIB),
            entrypoint=f"/bin/sh -c {SCRIPT!r}",
            network=MachineNetwork(planetary=True),
        ),
    )
    deployment = deployment_of(twin.twin_id, [machine])
    # A deployer submits at any moment of the block interval, not right after a block.
    await asyncio.sleep(random.uniform(0, BLOCK_TIME))
    start = time.monotonic()
    contract = await create(twin, node.node_id, deployment)
    included = time.monotonic()
    report = await wait_result(twin, contract, timeout=60)
    ok = time.monotonic()
    if report.state != "ok":
        raise RuntimeError(f"deployment {index} ended {report.state}: {report}")
    result = report.workload(machine.name)
    assert result is not None
    _http(grid, result.result.data["planetary_ip"])
    answered = time.monotonic()
    await twin.chain.cancel_contract(contract)
    await twin.chain.close()
    return Sample(
        mode=mode,
        inclusion=included - start,
        node=report.provision_ms / 1000,
        report=max(0.0, (ok - included) - report.provision_ms / 1000),
        to_ok=ok - start,
        to_http=answered - start,
    )


def _summary(samples: list[Sample]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("cold", "warm"):
        chosen = [s for s in samples if s.mode == mode]
        if not chosen:
            continue
        phases = {}
        for phase in ("inclusion", "node", "report", "to_ok", "to_http"):
            values = [getattr(s, phase) for s in chosen]
            phases[phase] = {
                "p50": round(statistics.median(values), 3),
                "p95": round(_percentile(values, 0.95), 3),
            }
        target = WARM_TARGET if mode == "warm" else COLD_TARGET
        phases["target_to_ok_p50"] = target
        phases["met"] = phases["to_ok"]["p50"] <= target
        out[mode] = phases
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="deployments per mode")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    console = Console(stderr=args.json)
    samples: list[Sample] = []
    with (
        tempfile.TemporaryDirectory(prefix="zgrid-bench-") as tmp,
        HostNetwork(Path(tmp) / "hosts") as network,
    ):
        grid = Grid(network, Path(tmp) / "grid", block_time=BLOCK_TIME).start()
        node = grid.add_node("bench")
        with Progress(console=console, transient=True) as progress:
            for mode in ("cold", "warm"):
                task = progress.add_task(f"{mode} deployments", total=args.count)
                for index in range(args.count):
                    if mode == "cold":
                        _make_cold(node)
                    samples.append(asyncio.run(_one(grid, node, mode, index)))
                    progress.advance(task)
    summary = _summary(samples)
    if args.json:
        print(json.dumps({"summary": summary, "samples": [asdict(s) for s in samples]}, indent=2))
        return 0
    table = Table(title=f"{args.count} container deployments per mode, 1 s blocks (seconds)")
    for column in ("mode", "phase", "p50", "p95"):
        table.add_column(column)
    for mode, phases in summary.items():
        for phase in ("inclusion", "node", "report", "to_ok", "to_http"):
            table.add_row(mode, phase, str(phases[phase]["p50"]), str(phases[phase]["p95"]))
        verdict = "met" if phases["met"] else "MISSED"
        table.add_row(mode, f"target p50 to_ok ≤ {phases['target_to_ok_p50']} s", verdict, "")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

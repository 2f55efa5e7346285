"""Billing benchmark: the block that bills 10,000 contracts at once, and a block with no bill due.

It builds a ledger in this process (a dev genesis, a ``LedgerState`` and its
``StateMachine``) and creates, through signed transactions applied one by one as a
block applies them, farms (one of them certified), nodes, and C node contracts spread
over T deployer twins and N nodes: each with used capacity reported by its node, some
with public IPs, some with reported traffic. All of them are created in one block, so
their first bills fall due together an hour of ledger time later. Then it measures:

* the billing block: ``machine.begin_block`` of the block an hour later (the ledger's
  own step, which bills every contract due), and ``state.take_writes`` (encoding the
  block's write set, what sealing it costs), each and their sum (target: at most 1 s
  for 10,000 bills). The setup state is kept encoded, so each repeat starts from the
  same state, loaded as a ledger loads it at start-up (not timed).
* a block with nothing due: ``begin_block`` of a block a second after the previous
  one, against a ``StateMachine`` without block steps (``block_steps = []``, what the
  ledger did before billing), median of many runs; and the same for a whole small
  block (begin_block, one transfer, take_writes, the state commitment), the ratio
  that says what a block costs now against before.

Run it from the project root: ``.venv/bin/python bench/billing.py`` (``--help`` for
options, ``--json`` for one JSON object). It exits 0 whenever the benchmark ran, a
missed target being reported as MISSED, and non-zero only when it could not run.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import secrets
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zgrid.chain import UNITS_PER_TOKEN, TransactionRejected, issue_join_token, sign_transaction
from zgrid.chain.genesis import dev_genesis
from zgrid.chain.machine import StateMachine
from zgrid.chain.state import next_commitment
from zgrid.chain.tables import LedgerState
from zgrid.identity import Identity

TARGET_BILLING_S = 1.0
TARGET_IDLE_RATIO = 1.05  # a block with nothing due: within 5% of a block before billing
HOUR = 3600
GIB = 1024**3
FUNDING = 100_000 * UNITS_PER_TOKEN  # each deployer twin's balance
SEALED = base64.b64encode(b"sealed deployment").decode()

out = Console(highlight=False, width=None if sys.stdout.isatty() else 100)
err = Console(stderr=True, highlight=False)


class BenchError(Exception):
    """The benchmark itself could not run."""


@dataclass
class Results:
    contracts: int
    twins: int
    nodes: int
    farms: int
    contracts_with_ips: int
    contracts_with_traffic: int
    setup_transactions: int
    setup_s: float
    setup_take_writes_s: float
    repeats: int
    bills: int
    billing_events: int
    billing_writes: int
    begin_block_s: float
    gc_s: float
    take_writes_s: float
    billing_block_s: float
    us_per_bill: float
    target_billing_s: float
    billing_ratio: float
    billing_met: bool
    idle_runs: int
    idle_begin_block_us: float
    idle_begin_block_before_us: float
    idle_begin_block_ratio: float
    idle_block_us: float
    idle_block_before_us: float
    idle_block_ratio: float
    target_idle_ratio: float
    idle_met: bool
    load_average: float  # the machine's 1-minute load at the end: others' work slows ours


class Chain:
    """A ledger state and its state machine, fed signed transactions as a block would be."""

    def __init__(self, genesis_time: int) -> None:
        self.validator = Identity(secrets.token_bytes(32))
        self.genesis, keys = dev_genesis(
            validator=self.validator.address, chain_id="zgrid-bench", genesis_time=genesis_time
        )
        self.faucet = keys["faucet"]
        self.state = LedgerState()
        self.machine = StateMachine(self.genesis, self.state)
        self.machine.apply_genesis()
        self.nonces: dict[str, int] = {}
        self.applied = 0

    def sign(self, who: Identity, call: str, args: dict[str, Any]) -> Any:
        nonce = self.nonces.get(who.address, 0)
        self.nonces[who.address] = nonce + 1
        return sign_transaction(
            who, chain_id=self.genesis.chain_id, nonce=nonce, call=call, args=args
        )

    def apply(
        self, who: Identity, call: str, args: dict[str, Any], *, height: int, timestamp: int
    ) -> dict[str, Any]:
        tx = self.sign(who, call, args)
        try:
            applied = self.machine.apply(tx, height=height, timestamp=timestamp)
        except TransactionRejected as exc:
            raise BenchError(f"{call} was refused: {exc}") from exc
        self.applied += 1
        return applied.result

    def drop_state(self) -> None:
        self.state = LedgerState()
        self.machine = StateMachine(self.genesis, self.state)


def fresh_machine(genesis: Any, dump: dict[tuple[str, str], bytes]) -> StateMachine:
    """A state machine over the state ``dump`` holds, loaded as the ledger loads its store."""
    state = LedgerState()
    for (name, key), raw in dump.items():
        state.load(name, key, raw)
    return StateMachine(genesis, state)


class Benchmark:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        # A whole minute, so the hour after it is the end of a schedule bucket.
        self.t0 = int(time.time()) // 60 * 60
        self.chain = Chain(self.t0)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self.progress = Progress(*columns, TimeElapsedColumn(), console=err, transient=True)
        self.with_ips = 0
        self.with_traffic = 0

    # -- setup: everything created in block 1, at ledger time t0 --------------------------

    def setup(self) -> None:
        o, chain, t0 = self.options, self.chain, self.t0

        def do(who: Identity, call: str, args: dict[str, Any]) -> dict[str, Any]:
            return chain.apply(who, call, args, height=1, timestamp=t0)

        farm_count = max(1, (o.nodes + 4) // 5)
        ip_every = round(1 / o.ip_share) if o.ip_share else 0
        traffic_every = round(1 / o.traffic_share) if o.traffic_share else 0

        # Round r puts one contract on every node; every ip_every-th round's ask for an IP.
        def has_ip(k: int) -> bool:
            return bool(ip_every) and (k // o.nodes) % ip_every == 0

        def has_traffic(k: int) -> bool:
            return bool(traffic_every) and (k // o.nodes + k) % traffic_every == 0

        ips_needed = [0] * farm_count
        for k in range(o.contracts):
            ips_needed[(k % o.nodes) % farm_count] += has_ip(k)
        farmers = [Identity(secrets.token_bytes(32)) for _ in range(farm_count)]
        node_keys = [Identity(secrets.token_bytes(32)) for _ in range(o.nodes)]
        deployers = [Identity(secrets.token_bytes(32)) for _ in range(o.twins)]
        self.deployers = deployers
        task = self.progress.add_task("twins, farms, nodes", total=None)
        funded = {who.address for who in deployers}
        for who in [*farmers, *node_keys, *deployers]:
            amount = FUNDING if who.address in funded else 100 * UNITS_PER_TOKEN
            do(chain.faucet, "accounts.transfer", {"to": who.address, "amount": amount})
            do(who, "twins.create", {})
        farm_ids = []
        for index, farmer in enumerate(farmers):
            farm_id = do(farmer, "farms.create", {"name": f"bench-farm-{index}"})["farm_id"]
            farm_ids.append(farm_id)
        # The first farm is certified (its contracts cost 25% more).
        do(chain.validator, "accounts.faucet", {"amount": UNITS_PER_TOKEN})
        do(
            chain.validator,
            "farms.set_certification",
            {"farm_id": farm_ids[0], "certification": "gold"},
        )
        node_ids = []
        for index, key in enumerate(node_keys):
            farm_index = index % farm_count
            token = issue_join_token(
                farmers[farm_index],
                chain_id=chain.genesis.chain_id,
                farm_id=farm_ids[farm_index],
                expires=t0 + HOUR,
                node=key.address,
            )
            resources = {"cru": 4096, "mru": 64 * 1024 * GIB, "sru": 1024 * 1024 * GIB, "hru": 0}
            args = {
                "farm_id": farm_ids[farm_index],
                "resources": resources,
                "join_token": token.encode(),
            }
            node_ids.append(do(key, "nodes.register", args)["node_id"])
        # Public IPs: on every farm, as many as the contracts of its nodes ask for.
        for farm_index, farmer in enumerate(farmers):
            for k in range(ips_needed[farm_index]):
                ip = f"10.{farm_index}.{k // 250}.{k % 250 + 2}/16"
                do(
                    farmer,
                    "farms.add_ip",
                    {
                        "farm_id": farm_ids[farm_index],
                        "ip": ip,
                        "gateway": f"10.{farm_index}.255.254",
                    },
                )
        self.progress.remove_task(task)

        task = self.progress.add_task("node contracts", total=o.contracts)
        capacity = {"cru": 2, "mru": 4 * GIB, "sru": 50 * GIB, "hru": 0}
        for k in range(o.contracts):
            node_index = k % o.nodes
            public_ips = 1 if has_ip(k) else 0
            args = {
                "node_id": node_ids[node_index],
                "deployment_hash": secrets.token_hex(32),
                "sealed_deployment": SEALED,
                "capacity": capacity,
                "public_ips": public_ips,
            }
            contract_id = do(deployers[k % o.twins], "contracts.create_node_contract", args)[
                "contract_id"
            ]
            node = node_keys[node_index]
            used = {
                "cru": 1 + k % 2,
                "mru": (1 + k % 4) * GIB,
                "sru": (10 + k % 40) * GIB,
                "hru": 0,
            }
            do(node, "contracts.report_resources", {"contract_id": contract_id, "used": used})
            if has_traffic(k):
                traffic = {"contract_id": contract_id, "bytes": (1 + k % 7) * GIB}
                do(node, "contracts.report_traffic", traffic)
                self.with_traffic += 1
            self.with_ips += public_ips
            if k % 100 == 99:
                self.progress.update(task, completed=k + 1)
        self.progress.remove_task(task)
        self.farms = farm_count

    # -- the block that bills them all -----------------------------------------------------

    def billing_block(
        self, dump: dict[tuple[str, str], bytes]
    ) -> tuple[float, float, float, int, int, int]:
        """One run: (begin_block s, of it in garbage collection s, take_writes s, bills,
        events, writes)."""
        machine = fresh_machine(self.chain.genesis, dump)
        before = machine.state.counter("contract")
        collecting = [0.0, 0.0]

        def collector(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                collecting[1] = time.perf_counter()
            else:
                collecting[0] += time.perf_counter() - collecting[1]

        gc.collect()
        gc.callbacks.append(collector)
        try:
            started = time.perf_counter()
            events = machine.begin_block(height=3, timestamp=self.t0 + HOUR)
            billed = time.perf_counter()
        finally:
            gc.callbacks.remove(collector)
        writes = machine.state.take_writes()
        encoded = time.perf_counter()
        bills = sum(1 for name, _ in events if name == "ContractBilled")
        if before and not bills:
            raise BenchError("the billing block billed nothing (was the ledger's step left out?)")
        return billed - started, collecting[0], encoded - billed, bills, len(events), len(writes)

    # -- a block with nothing due, now and before ------------------------------------------

    def idle_blocks(
        self, dump: dict[tuple[str, str], bytes]
    ) -> tuple[list[float], list[float], list[float], list[float]]:
        """Per run, in seconds: begin_block with the step, without it; whole block, both."""
        runs = self.options.idle_runs
        now = fresh_machine(self.chain.genesis, dump)
        before = fresh_machine(self.chain.genesis, dump)
        before.block_steps = []
        payer = self.deployers[0]
        receiver = self.deployers[1 % len(self.deployers)].address
        nonce = self.chain.nonces[payer.address]
        chain_id = self.chain.genesis.chain_id

        def transfers() -> list[Any]:
            return [
                sign_transaction(
                    payer,
                    chain_id=chain_id,
                    nonce=nonce + k,
                    call="accounts.transfer",
                    args={"to": receiver, "amount": 1},
                )
                for k in range(runs)
            ]

        task = self.progress.add_task("blocks with nothing due", total=runs)
        signed_now, signed_before = transfers(), transfers()
        step_now: list[float] = []
        step_before: list[float] = []
        block_now: list[float] = []
        block_before: list[float] = []
        commitments = {id(now): bytes(32), id(before): bytes(32)}
        clock = time.perf_counter

        def block(machine: StateMachine, tx: Any, height: int, stamp: int) -> tuple[float, float]:
            started = clock()
            machine.begin_block(height=height, timestamp=stamp)
            stepped = clock()
            machine.apply(tx, height=height, timestamp=stamp)
            writes = machine.state.take_writes()
            commitments[id(machine)] = next_commitment(commitments[id(machine)], writes)
            return stepped - started, clock() - started

        for k in range(runs):
            # A block a second after the last, well before the hour that bills.
            height, stamp = 2 + k, self.t0 + 1 + k
            pairs = [
                (now, signed_now, step_now, block_now),
                (before, signed_before, step_before, block_before),
            ]
            if k % 2:
                pairs.reverse()  # neither goes first every time
            for machine, signed, steps, blocks in pairs:
                step, whole = block(machine, signed[k], height, stamp)
                steps.append(step)
                blocks.append(whole)
            if k % 100 == 99:
                self.progress.update(task, completed=k + 1)
        self.progress.remove_task(task)
        return step_now, step_before, block_now, block_before

    def run(self) -> Results:
        o = self.options
        with self.progress:
            started = time.perf_counter()
            self.setup()
            setup_s = time.perf_counter() - started
            started = time.perf_counter()
            self.chain.state.take_writes()
            setup_writes_s = time.perf_counter() - started
            err.print(
                f"setup: {self.chain.applied:,} transactions applied in {setup_s:.1f} s "
                f"(take_writes {setup_writes_s:.2f} s)"
            )
            dump = self.chain.state.dump()
            self.chain.drop_state()  # each run loads its own: one ledger's state in memory
            runs = []
            task = self.progress.add_task("billing blocks", total=o.repeats)
            for _ in range(o.repeats):
                runs.append(self.billing_block(dump))
                self.progress.advance(task)
            self.progress.remove_task(task)
            step_now, step_before, block_now, block_before = self.idle_blocks(dump)
        best = sorted(runs, key=lambda run: run[0] + run[2])[len(runs) // 2]  # the median run
        begin_s, gc_s, writes_s, bills, events, writes = best
        total = begin_s + writes_s
        med = statistics.median
        idle_step, idle_step_before = med(step_now), med(step_before)
        idle_block, idle_block_before = med(block_now), med(block_before)
        block_ratio = idle_block / idle_block_before
        return Results(
            contracts=o.contracts,
            twins=o.twins,
            nodes=o.nodes,
            farms=self.farms,
            contracts_with_ips=self.with_ips,
            contracts_with_traffic=self.with_traffic,
            setup_transactions=self.chain.applied,
            setup_s=setup_s,
            setup_take_writes_s=setup_writes_s,
            repeats=o.repeats,
            bills=bills,
            billing_events=events,
            billing_writes=writes,
            begin_block_s=begin_s,
            gc_s=gc_s,
            take_writes_s=writes_s,
            billing_block_s=total,
            us_per_bill=total / max(1, bills) * 1e6,
            target_billing_s=TARGET_BILLING_S,
            billing_ratio=total / TARGET_BILLING_S,
            billing_met=total <= TARGET_BILLING_S and bills == o.contracts,
            idle_runs=o.idle_runs,
            idle_begin_block_us=idle_step * 1e6,
            idle_begin_block_before_us=idle_step_before * 1e6,
            idle_begin_block_ratio=idle_step / idle_step_before if idle_step_before else 0.0,
            idle_block_us=idle_block * 1e6,
            idle_block_before_us=idle_block_before * 1e6,
            idle_block_ratio=block_ratio,
            target_idle_ratio=TARGET_IDLE_RATIO,
            idle_met=block_ratio <= TARGET_IDLE_RATIO,
            load_average=os.getloadavg()[0],
        )


def verdict(met: bool) -> str:
    return "[green]met[/]" if met else "[bold red]MISSED[/]"


def print_table(r: Results) -> None:
    table = Table(title="zgrid billing benchmark")
    table.add_column("metric")
    table.add_column("measured", justify="right")
    table.add_column("target", justify="right")
    table.add_column("result")
    table.add_row("node contracts", f"{r.contracts:,}")
    table.add_row("twins / nodes / farms", f"{r.twins} / {r.nodes} / {r.farms}")
    table.add_row(
        "with public IPs / traffic", f"{r.contracts_with_ips:,} / {r.contracts_with_traffic:,}"
    )
    table.add_row("setup transactions", f"{r.setup_transactions:,} in {r.setup_s:.1f} s")
    table.add_row(
        "bills in the billing block",
        f"{r.bills:,}",
        f"{r.contracts:,}",
        verdict(r.bills == r.contracts),
    )
    table.add_row("events / records written", f"{r.billing_events:,} / {r.billing_writes:,}")
    table.add_row(f"begin_block (median of {r.repeats})", f"{r.begin_block_s * 1000:,.0f} ms")
    table.add_row("  of it garbage collection", f"{r.gc_s * 1000:,.0f} ms")
    table.add_row("take_writes", f"{r.take_writes_s * 1000:,.0f} ms")
    ratio = f"{verdict(r.billing_met)} (x{r.billing_ratio:.2f} of target)"
    table.add_row(
        "billing block",
        f"{r.billing_block_s * 1000:,.0f} ms",
        f"≤ {r.target_billing_s * 1000:,.0f} ms",
        ratio,
    )
    table.add_row("per bill", f"{r.us_per_bill:,.0f} µs")
    table.add_row(
        f"idle begin_block (median of {r.idle_runs:,})", f"{r.idle_begin_block_us:,.1f} µs"
    )
    table.add_row("idle begin_block, no steps", f"{r.idle_begin_block_before_us:,.2f} µs")
    table.add_row("idle begin_block: now / before", f"x{r.idle_begin_block_ratio:,.1f}")
    table.add_row("idle block (1 transfer)", f"{r.idle_block_us:,.0f} µs")
    table.add_row("idle block, no steps", f"{r.idle_block_before_us:,.0f} µs")
    target = f"≤ x{r.target_idle_ratio:.2f}"
    table.add_row(
        "idle block: now / before", f"x{r.idle_block_ratio:.3f}", target, verdict(r.idle_met)
    )
    table.add_row("machine load (1 min)", f"{r.load_average:.2f} on {os.cpu_count()} cores")
    out.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the zgrid ledger's billing: a block billing every contract at once, "
        "and a block with no bill due against the ledger without billing."
    )
    add = parser.add_argument
    add("--contracts", type=int, default=10_000, help="node contracts, C (default 10000)")
    add("--twins", type=int, default=100, help="deployer twins, T (default 100)")
    add("--nodes", type=int, default=20, help="nodes, N (default 20; a farm per 5 nodes)")
    add(
        "--ip-share",
        type=float,
        default=0.1,
        help="share of contracts with a public IP (default 0.1)",
    )
    add(
        "--traffic-share",
        type=float,
        default=0.5,
        help="share of contracts with reported traffic (default 0.5)",
    )
    add("--repeats", type=int, default=3, help="billing blocks timed, median shown (default 3)")
    add(
        "--idle-runs",
        type=int,
        default=2000,
        help="blocks with nothing due timed (default 2000, at most 3000)",
    )
    add("--json", action="store_true", help="print the results as one JSON object")
    options = parser.parse_args(argv)
    if min(options.contracts, options.twins, options.nodes, options.repeats, options.idle_runs) < 1:
        parser.error("--contracts, --twins, --nodes, --repeats and --idle-runs must be positive")
    if options.twins < 2:
        parser.error("--twins must be at least 2 (the idle blocks transfer between two of them)")
    if options.idle_runs > 3000:
        parser.error("--idle-runs must be at most 3000 (the blocks must stay within the hour)")
    if options.contracts > 2000 * options.nodes:
        parser.error(
            "--contracts can be at most 2000 per node (--nodes): a node has 4096 cores, "
            "a contract reserves 2"
        )
    for name in ("ip_share", "traffic_share"):
        if not 0 <= getattr(options, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        results = Benchmark(options).run()
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except BenchError as exc:
        err.print(f"[red]benchmark failed:[/] {escape(str(exc))}")
        return 1
    if options.json:
        sys.stdout.write(json.dumps(asdict(results)) + "\n")
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

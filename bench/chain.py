"""Ledger benchmark: applied transactions per second and submit-to-inclusion latency.

It starts a private dev chain (``zgrid chain init --dev``, then ``zgrid chain run`` on
127.0.0.1 and a free port, in a temporary directory), funds M fresh accounts from the
faucet, then measures:

* throughput: N transfers, signed beforehand round-robin over the M accounts, are sent
  through ``POST /transactions/batch``; the clock runs from the first request until the
  last transaction of every account is in a committed block. Applied tx/s = N / elapsed
  (target: at least 2,000 tx/s). Signing is the client's cost, so it is not timed.
* latency: single transfers sent one at a time with ``POST /transactions?wait=true`` at
  random moments of the block interval, timed from send to the "included" answer:
  p50 and p99 (target: p50 at most 1.5 x block time).

Run it from the project root: ``.venv/bin/python bench/chain.py`` (``--help`` for
options, ``--json`` for one JSON object). It exits 0 whenever the benchmark ran, a
missed target being reported as MISSED, and non-zero only when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zgrid.chain import UNITS_PER_TOKEN, SignedTransaction, sign_transaction
from zgrid.identity import Identity

TARGET_TPS = 2000.0
TARGET_P50_BLOCKS = 1.5
FAUCET_UNITS = 1000 * UNITS_PER_TOKEN
JSON_HEADERS = {"content-type": "application/json"}
SHOWN_REFUSALS = 10

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class BenchError(Exception):
    """The benchmark itself could not run."""


@dataclass
class Results:
    transactions: int
    accounts: int
    block_time_s: float
    submit_s: float
    elapsed_s: float
    applied_tps: float
    target_tps: float
    tps_ratio: float
    refused: int
    latency_samples: int
    p50_ms: float
    p99_ms: float
    p50_over_block_time: float
    target_p50_over_block_time: float
    throughput_met: bool
    latency_met: bool


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class LedgerProcess:
    """A ``zgrid chain run`` subprocess serving a fresh dev chain kept in ``workdir``."""

    def __init__(self, workdir: Path, port: int, block_time: float) -> None:
        self.data, self.log_path = workdir / "chain", workdir / "ledger.log"
        self.url = f"http://127.0.0.1:{port}"
        self.port, self.block_time = port, block_time
        self.process: subprocess.Popen[bytes] | None = None

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start(self) -> None:
        zgrid = [sys.executable, "-m", "zgrid", "chain"]
        init = subprocess.run(
            [*zgrid, "init", "--dev", "--data", str(self.data)], capture_output=True, check=False
        )
        if init.returncode != 0:
            raise BenchError(f"zgrid chain init failed:\n{init.stderr.decode().strip()}")
        listen, block_time = f"127.0.0.1:{self.port}", str(self.block_time)
        run = [*zgrid, "run", "--data", str(self.data), "--listen", listen]
        with self.log_path.open("wb") as log:
            # A session of its own: Ctrl-C reaches the benchmark, which then stops the ledger.
            self.process = subprocess.Popen(
                [*run, "--block-time", block_time],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, http: httpx.AsyncClient, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise BenchError(f"the ledger exited with code {code}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                response = await http.get("/chain/head", timeout=2.0)
                if response.status_code == 200:
                    head: dict[str, Any] = response.json()
                    return head
            await asyncio.sleep(0.1)
        raise BenchError(
            f"the ledger did not answer GET {self.url}/chain/head within {timeout:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Benchmark:
    """The two measurements against one running ledger, from ``accounts`` funded here."""

    def __init__(self, http: httpx.AsyncClient, chain_id: str, options: argparse.Namespace):
        self.http, self.chain_id, self.options = http, chain_id, options
        self.accounts = [Identity(secrets.token_bytes(32)) for _ in range(options.accounts)]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self.progress = Progress(*columns, TimeElapsedColumn(), console=err, transient=True)

    def sign(self, signer: int, nonce: int, call: str, args: dict[str, Any]) -> SignedTransaction:
        account = self.accounts[signer]
        return sign_transaction(account, chain_id=self.chain_id, nonce=nonce, call=call, args=args)

    def transfer(self, sender: int, nonce: int) -> SignedTransaction:
        receiver = self.accounts[(sender + 1) % len(self.accounts)].address
        return self.sign(sender, nonce, "accounts.transfer", {"to": receiver, "amount": 1})

    async def post_batch(self, body: bytes) -> list[dict[str, Any]]:
        response = await self.http.post("/transactions/batch", content=body, headers=JSON_HEADERS)
        if response.status_code != 200:
            raise BenchError(f"POST /transactions/batch: {response.status_code} {response.text}")
        answers: list[dict[str, Any]] = response.json()
        return answers

    async def wait_included(self, hashes: list[str], timeout: float) -> None:
        """Return once every transaction in ``hashes`` is in a committed block."""
        waiting, deadline = set(hashes), time.monotonic() + timeout
        while waiting:
            polled = list(waiting)
            answers = await asyncio.gather(*(self.http.get(f"/transactions/{h}") for h in polled))
            for tx_hash, response in zip(polled, answers, strict=True):
                if response.status_code != 200:
                    raise BenchError(f"GET /transactions/{tx_hash}: {response.status_code}")
                if response.json()["status"] == "included":
                    waiting.discard(tx_hash)
            if waiting and time.monotonic() > deadline:
                raise BenchError(f"{len(waiting)} transactions not included within {timeout:.0f} s")
            await asyncio.sleep(0.02 if waiting else 0)

    async def fund(self) -> None:
        faucet = {"amount": FAUCET_UNITS}
        calls = [self.sign(i, 0, "accounts.faucet", faucet) for i in range(len(self.accounts))]
        answers = await self.post_batch(encode([tx.to_json() for tx in calls]))
        refused = [answer["error"] for answer in answers if "error" in answer]
        if refused:
            raise BenchError(f"the faucet refused {len(refused)} accounts, first: {refused[0]}")
        await self.wait_included([tx.hash for tx in calls], timeout=30.0)

    def sign_transfers(self) -> list[SignedTransaction]:
        """N transfers, round-robin over the accounts; each account's nonces run 1, 2, 3, ..."""
        count, m = self.options.transactions, len(self.accounts)
        task = self.progress.add_task("signing transfers", total=count)
        transactions = []
        for k in range(count):
            transactions.append(self.transfer(k % m, k // m + 1))
            if k % 500 == 499:
                self.progress.update(task, completed=k + 1)
        self.progress.remove_task(task)
        return transactions

    async def throughput(self, transactions: list[SignedTransaction]) -> tuple[float, float, int]:
        """Send all batches; return (seconds to submit, seconds to inclusion, refusals)."""
        size, streams, m = self.options.batch_size, self.options.streams, len(self.accounts)
        # Each stream owns a fixed subset of accounts, so every account's nonces arrive in order.
        shards: list[list[SignedTransaction]] = [[] for _ in range(streams)]
        for k, tx in enumerate(transactions):
            shards[(k % m) % streams].append(tx)
        chunks = [[s[i : i + size] for i in range(0, len(s), size)] for s in shards]
        plans = [[(c, encode([tx.to_json() for tx in c])) for c in shard] for shard in chunks]
        refused: list[dict[str, Any]] = []
        last_hash: dict[str, str] = {}
        task = self.progress.add_task("submitting batches", total=len(transactions))

        async def send(plan: list[tuple[list[SignedTransaction], bytes]]) -> None:
            for chunk, body in plan:
                answers = await self.post_batch(body)
                if len(answers) != len(chunk):
                    raise BenchError(f"sent {len(chunk)} transactions, got {len(answers)} answers")
                for tx, answer in zip(chunk, answers, strict=True):
                    if "error" in answer:
                        refused.append({"nonce": tx.body.nonce, **answer["error"]})
                    else:
                        last_hash[tx.body.signer] = answer["hash"]
                self.progress.advance(task, len(chunk))

        started = time.perf_counter()
        await asyncio.gather(*(send(plan) for plan in plans))
        submitted = time.perf_counter() - started
        self.progress.update(task, description="waiting for inclusion")
        await self.wait_included(list(last_hash.values()), timeout=60 + len(transactions) / 200)
        elapsed = time.perf_counter() - started
        self.progress.remove_task(task)
        for refusal in refused[:SHOWN_REFUSALS]:
            err.print(f"[red]refused:[/] {escape(str(refusal))}")
        if len(refused) > SHOWN_REFUSALS:
            err.print(f"... and {len(refused) - SHOWN_REFUSALS} more refusals")
        return submitted, elapsed, len(refused)

    async def latency(self) -> list[float]:
        """Seconds from sending one transfer to its "included" answer, one sample at a time."""
        found = await asyncio.gather(
            *(self.http.get(f"/accounts/{a.address}") for a in self.accounts)
        )
        nonces = [int(response.json()["nonce"]) for response in found]
        samples, block_time = self.options.latency_samples, self.options.block_time
        task = self.progress.add_task("latency samples", total=samples)
        timings: list[float] = []
        for k in range(samples):
            sender = k % len(self.accounts)
            body = encode(self.transfer(sender, nonces[sender]).to_json())
            await asyncio.sleep(random.uniform(0, block_time))
            started = time.perf_counter()
            response = await self.http.post(
                "/transactions", params={"wait": "true"}, content=body, headers=JSON_HEADERS
            )
            timings.append(time.perf_counter() - started)
            if response.status_code != 200 or response.json().get("status") != "included":
                raise BenchError(f"latency transfer: {response.status_code} {response.text}")
            nonces[sender] += 1
            self.progress.advance(task)
        self.progress.remove_task(task)
        return timings

    async def run(self) -> Results:
        await self.fund()
        with self.progress:
            submitted, elapsed, refused = await self.throughput(self.sign_transfers())
            timings = await self.latency()
        o = self.options
        tps, p50 = o.transactions / elapsed, percentile(timings, 0.50)
        return Results(
            transactions=o.transactions,
            accounts=o.accounts,
            block_time_s=o.block_time,
            submit_s=submitted,
            elapsed_s=elapsed,
            applied_tps=tps,
            target_tps=TARGET_TPS,
            tps_ratio=tps / TARGET_TPS,
            refused=refused,
            latency_samples=len(timings),
            p50_ms=p50 * 1000,
            p99_ms=percentile(timings, 0.99) * 1000,
            p50_over_block_time=p50 / o.block_time,
            target_p50_over_block_time=TARGET_P50_BLOCKS,
            throughput_met=tps >= TARGET_TPS and refused == 0,
            latency_met=p50 / o.block_time <= TARGET_P50_BLOCKS,
        )


async def bench(options: argparse.Namespace, ledger: LedgerProcess) -> Results:
    limits = httpx.Limits(max_connections=options.accounts + options.streams + 8)
    async with httpx.AsyncClient(base_url=ledger.url, timeout=120.0, limits=limits) as http:
        head = await ledger.wait_ready(http)
        assert ledger.process is not None
        err.print(f"ledger pid {ledger.process.pid} on {ledger.url}, chain {head['chain_id']!r}")
        return await Benchmark(http, head["chain_id"], options).run()


def verdict(met: bool) -> str:
    return "[green]met[/]" if met else "[bold red]MISSED[/]"


def print_table(r: Results) -> None:
    table = Table(title="zgrid ledger benchmark")
    table.add_column("metric")
    table.add_column("measured", justify="right")
    table.add_column("target", justify="right")
    table.add_column("result")
    table.add_row("transactions", f"{r.transactions:,}")
    table.add_row("accounts", str(r.accounts))
    table.add_row("submitted in", f"{r.submit_s:.2f} s")
    table.add_row("elapsed to last included", f"{r.elapsed_s:.2f} s")
    ratio = f"{verdict(r.applied_tps >= r.target_tps)} (x{r.tps_ratio:.2f} of target)"
    table.add_row("applied tx/s", f"{r.applied_tps:,.0f}", f"≥ {r.target_tps:,.0f}", ratio)
    table.add_row("refused transactions", str(r.refused), "0", verdict(r.refused == 0))
    table.add_row("latency samples", str(r.latency_samples))
    table.add_row("p50 inclusion", f"{r.p50_ms:,.0f} ms")
    table.add_row("p99 inclusion", f"{r.p99_ms:,.0f} ms")
    table.add_row("block time", f"{r.block_time_s * 1000:,.0f} ms")
    target, p50_ratio = f"≤ {r.target_p50_over_block_time}", f"{r.p50_over_block_time:.2f}"
    table.add_row("p50 / block time", p50_ratio, target, verdict(r.latency_met))
    out.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the zgrid ledger: applied tx/s and inclusion latency."
    )
    add = parser.add_argument
    add("--transactions", type=int, default=20_000, help="transfers to apply, N (default 20000)")
    add("--accounts", type=int, default=20, help="sending accounts, M >= 2 (default 20)")
    add("--block-time", type=float, default=1.0, help="seconds between blocks (default 1.0)")
    add("--latency-samples", type=int, default=200, help="single transfers timed (default 200)")
    add("--port", type=int, default=None, help="ledger port on 127.0.0.1 (default: a free one)")
    add("--batch-size", type=int, default=500, help="transactions per batch (default 500)")
    add("--streams", type=int, default=2, help="concurrent batch requests (default 2)")
    add("--json", action="store_true", help="print the results as one JSON object")
    options = parser.parse_args(argv)
    if options.accounts < 2:
        parser.error("--accounts must be at least 2 (an account cannot pay itself)")
    if min(options.transactions, options.latency_samples, options.batch_size) < 1:
        parser.error("--transactions, --latency-samples and --batch-size must be positive")
    if not 0.05 <= options.block_time <= 60:
        parser.error("--block-time must be between 0.05 and 60 seconds")
    options.streams = max(1, min(options.streams, options.accounts))
    return options


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)  # clean up on `kill` as on Ctrl-C
    with tempfile.TemporaryDirectory(prefix="zgrid-bench-") as workdir:
        ledger = LedgerProcess(Path(workdir), options.port or free_port(), options.block_time)
        try:
            ledger.start()
            results = asyncio.run(bench(options, ledger))
        except KeyboardInterrupt:
            err.print("interrupted")
            return 130
        except (BenchError, httpx.HTTPError, OSError) as exc:
            err.print(f"[red]benchmark failed:[/] {escape(str(exc) or type(exc).__name__)}")
            return 1
        finally:
            ledger.stop()
    if options.json:
        sys.stdout.write(json.dumps(asdict(results)) + "\n")
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

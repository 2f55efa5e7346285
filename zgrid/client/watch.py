"""Following what nodes make of our contracts: their sealed results, read until settled.

The ledger's event stream wakes the watcher when a node reports (``ContractResultReported``);
a poll every second covers a stream that dropped. The node's own words end up in
:class:`Outcome.failure`: a workload's error message, an update it refused, a contract the
ledger ended, or, when a node stays silent past the deadline, what the ledger knows of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zgrid.chain import ChainClient, LedgerUnavailable
from zgrid.identity import Identity, UnsealError
from zgrid.node import ProvisionError, ResultReport, open_results

__all__ = ["Expectation", "Outcome", "WorkloadProgress", "open_report", "watch_results"]

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({"ok", "error"})
_POLL = 1.0  # seconds between reads when the event stream is quiet
_WAKE_EVENTS = frozenset({"ContractResultReported", "ContractCanceled", "ContractUpdated"})


@dataclass(frozen=True)
class Expectation:
    """A contract version we wait for; ``workloads`` maps its workload names to item keys."""

    contract_id: int
    node_id: int
    version: int
    workloads: dict[str, str]
    types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkloadProgress:
    key: str
    name: str
    type: str
    node_id: int
    contract_id: int
    state: str  # "submitted" until the node reports, then the node's state
    message: str = ""


@dataclass(frozen=True)
class Outcome:
    expectation: Expectation
    report: ResultReport | None
    failure: str = ""  # empty when every workload is ok (or it did not settle, see below)
    refused: bool = False  # the node refused the version and runs the one before
    settled: bool = True  # False: left unsettled because another contract failed first

    @property
    def ok(self) -> bool:
        return self.settled and not self.failure


ProgressCallback = Callable[[Sequence[WorkloadProgress]], None]


async def watch_results(
    chain: ChainClient,
    identity: Identity,
    expectations: Sequence[Expectation],
    *,
    timeout: float,
    on_progress: ProgressCallback | None = None,
) -> list[Outcome]:
    """Wait until every expected contract version settled (all ok, or something failed)."""
    wake = asyncio.Event()
    ids = {e.contract_id for e in expectations}
    head = await chain.head()
    follower = asyncio.create_task(_follow(chain, int(head["height"]), ids, wake))
    settled: dict[int, Outcome] = {}
    latest: dict[int, ResultReport | None] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            for expectation in expectations:
                if expectation.contract_id in settled:
                    continue
                outcome, report = await _check(chain, identity, expectation)
                latest[expectation.contract_id] = report
                if outcome is not None:
                    settled[expectation.contract_id] = outcome
            if on_progress is not None:
                on_progress(_rows(expectations, latest, settled))
            if len(settled) == len(expectations):
                return [settled[e.contract_id] for e in expectations]
            if any(o.failure for o in settled.values()):  # no use waiting: it rolls back
                return [
                    settled.get(e.contract_id)
                    or Outcome(e, latest.get(e.contract_id), settled=False)
                    for e in expectations
                ]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for expectation in expectations:
                    if expectation.contract_id not in settled:
                        settled[expectation.contract_id] = Outcome(
                            expectation,
                            latest.get(expectation.contract_id),
                            await _silence(chain, expectation, timeout),
                        )
                return [settled[e.contract_id] for e in expectations]
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(_POLL, remaining))
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


async def _follow(chain: ChainClient, height: int, ids: set[int], wake: asyncio.Event) -> None:
    """Wake the watcher at each event about our contracts; the poll goes on without it."""
    try:
        await _wake_on_events(chain, height, ids, wake)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a stream gone bad: the poll every second carries on
        log.warning("the ledger's event stream stopped (%s); polling only", exc)


async def _wake_on_events(
    chain: ChainClient, height: int, ids: set[int], wake: asyncio.Event
) -> None:
    async for event in chain.events(height, give_up_after=None):
        if event.name in _WAKE_EVENTS and event.data.get("contract_id") in ids:
            wake.set()


async def _check(
    chain: ChainClient, identity: Identity, expectation: Expectation
) -> tuple[Outcome | None, ResultReport | None]:
    contract = await chain.contract(expectation.contract_id)
    report = open_report(identity, contract)
    node = f"node {expectation.node_id}"
    if contract.get("state") == "deleted":
        reason = str(contract.get("deleted_reason") or "deleted")
        return Outcome(
            expectation,
            report,
            f"contract {expectation.contract_id} on {node} was ended by the ledger ({reason})",
        ), report
    if report is None:
        return None, None
    if report.version < expectation.version and report.message.startswith(
        f"version {expectation.version} refused"
    ):
        failure = f"{node} refused the update: {report.message}"
        return Outcome(expectation, report, failure, refused=True), report
    if report.version != expectation.version:
        return None, report
    failures = [
        f"{w.name} ({w.type}) on {node}: {w.result.message or 'failed'}"
        for w in report.workloads
        if w.result.state == "error"
    ]
    if failures:
        return Outcome(expectation, report, "; ".join(failures)), report
    if report.state == "error":
        return Outcome(expectation, report, f"{node}: {report.message or 'failed'}"), report
    states = {w.name: w.result.state for w in report.workloads}
    if all(states.get(name) in FINAL_STATES for name in expectation.workloads):
        return Outcome(expectation, report), report
    return None, report


def open_report(identity: Identity, contract: dict[str, object]) -> ResultReport | None:
    """The node's latest results on ``contract``, or None (no report, or not sealed to us)."""
    result = contract.get("result")
    if not isinstance(result, dict) or not result.get("sealed_results"):
        return None
    try:
        return open_results(identity, str(result["sealed_results"]))
    except (UnsealError, ProvisionError, ValueError):
        return None  # not sealed to us: not a result we can read


async def _silence(chain: ChainClient, expectation: Expectation, timeout: float) -> str:
    """Why a node said nothing: what the ledger knows of it."""
    base = (
        f"node {expectation.node_id} did not report on contract {expectation.contract_id} "
        f"(version {expectation.version}) within {timeout:g} s"
    )
    try:
        node = await chain.node(expectation.node_id)
        head = await chain.head()
    except LedgerUnavailable:
        return base
    status = node.get("status", "unknown")
    last = int(node.get("last_uptime_report") or 0)
    if last:
        ago = max(0, int(head["timestamp"]) - last)
        return f"{base}; the ledger has it {status}, its last uptime report {ago} s ago"
    return f"{base}; the ledger has it {status}, with no uptime report yet"


def _rows(
    expectations: Sequence[Expectation],
    latest: dict[int, ResultReport | None],
    settled: dict[int, Outcome],
) -> list[WorkloadProgress]:
    rows: list[WorkloadProgress] = []
    for expectation in expectations:
        report = latest.get(expectation.contract_id)
        current = report is not None and report.version == expectation.version
        for name, key in expectation.workloads.items():
            found = report.workload(name) if current and report is not None else None
            state, message = "submitted", ""
            if found is not None:
                state, message = str(found.result.state), found.result.message
            outcome = settled.get(expectation.contract_id)
            if found is None and outcome is not None and not outcome.ok:
                state, message = "failed", outcome.failure
            rows.append(
                WorkloadProgress(
                    key=key,
                    name=name,
                    type=expectation.types.get(name, ""),
                    node_id=expectation.node_id,
                    contract_id=expectation.contract_id,
                    state=state,
                    message=message,
                )
            )
    return rows

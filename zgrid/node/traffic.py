"""Network traffic of the node's contracts, reported to the ledger every hour of ledger time.

A machine's traffic is what crossed the host end of its veth (bytes received plus bytes
sent), read from the kernel's counters of the node's netns (`ip -j -s link`: netlink
answers for the caller's netns, where /sys/class/net shows the netns sysfs was mounted
in). :func:`report_traffic` sends each contract the bytes since its last report
(``contracts.report_traffic``, signed by the node), which the ledger bills at the
contract's next bill.

The counters of the last report are kept in the node's local state, so a restarted node
counts on from them instead of reporting everything again. A counter that went down, or
a link that is another one under the same name (a new ifindex: the machine's network was
made again), counts from zero. A contract's counters move on only once the ledger took
its report, so bytes of a report that did not arrive go with the next one; a report sent
just before the node stopped is looked up on the ledger by its transaction when it starts
again, so it counts once whether its answer arrived or not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zgrid.chain import (
    ChainClient,
    ChainError,
    LedgerUnavailable,
    NotFound,
    RejectCode,
    TransactionRejected,
)
from zgrid.node.errors import NetworkFailure, NodeError
from zgrid.node.state import LocalState
from zgrid.node.system import run_command

__all__ = [
    "MAX_REPORT",
    "TRAFFIC_INTERVAL",
    "Counter",
    "Pending",
    "TrafficBook",
    "read_counters",
    "report_once",
    "report_traffic",
    "traffic_since",
]

log = logging.getLogger(__name__)

TRAFFIC_INTERVAL = 3600.0  # seconds of ledger time between two reports (one billing period)
MAX_REPORT = 10**15  # the most bytes the ledger takes in one report
_META_KEY = "traffic_counters"
_PENDING_KEY = "traffic_in_flight"
# Refusals that will not change by asking again: the contract is gone or not this node's.
_FINAL_REFUSALS = frozenset({RejectCode.NOT_FOUND, RejectCode.FORBIDDEN, RejectCode.CONFLICT})


@dataclass(frozen=True, slots=True)
class Counter:
    """One link's traffic counter: which link it is (ifindex) and its bytes both ways."""

    index: int
    bytes: int


async def read_counters() -> dict[str, Counter]:
    """Every link of the calling process's netns, by name."""
    output = await run_command(["ip", "-j", "-s", "link", "show"])
    try:
        listed = json.loads(output or "[]")
    except ValueError as exc:
        raise NetworkFailure(f"`ip -j -s link show` printed no JSON: {exc}") from exc
    found: dict[str, Counter] = {}
    for link in listed if isinstance(listed, list) else []:
        stats = link.get("stats64") or link.get("stats") or {}
        try:
            total = int(stats["rx"]["bytes"]) + int(stats["tx"]["bytes"])
            found[str(link["ifname"])] = Counter(int(link["ifindex"]), total)
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _contract_of(workload_id: str) -> int:
    return int(workload_id.split("-", 2)[1])


def traffic_since(
    last: Mapping[str, Counter], now: Mapping[str, Counter], links: Mapping[str, str]
) -> dict[int, int]:
    """Bytes per contract since ``last``: ``links`` maps each workload id to its link."""
    traffic: dict[int, int] = {}
    for workload_id, link in links.items():
        current = now.get(link)
        if current is None:
            continue
        before = last.get(link)
        if before is None or before.index != current.index or current.bytes < before.bytes:
            moved = current.bytes  # a new link (or one made again): all of it is new
        else:
            moved = current.bytes - before.bytes
        contract = _contract_of(workload_id)
        traffic[contract] = traffic.get(contract, 0) + moved
    return traffic


def _counters(document: Mapping[str, Any]) -> dict[str, Counter]:
    return {name: Counter(int(pair[0]), int(pair[1])) for name, pair in document.items()}


def _document(counters: Mapping[str, Counter]) -> dict[str, list[int]]:
    return {name: [c.index, c.bytes] for name, c in sorted(counters.items())}


@dataclass(frozen=True, slots=True)
class Pending:
    """A report signed and maybe sent, not known to have landed: its transaction and the
    counters of its contract's links it would settle."""

    tx_hash: str
    counters: dict[str, Counter]


class TrafficBook:
    """The counters of the last reports, and the report in flight, in the node's state."""

    def __init__(self, state: LocalState) -> None:
        self._state = state

    def load(self) -> dict[str, Counter]:
        raw = self._state.get_meta(_META_KEY)
        try:
            return _counters(json.loads(raw)) if raw else {}
        except (ValueError, TypeError, IndexError, AttributeError):
            log.warning("the saved traffic counters cannot be read; counting from now")
            return {}

    def pending(self) -> Pending | None:
        raw = self._state.get_meta(_PENDING_KEY)
        try:
            document = json.loads(raw) if raw else None
            if not document:
                return None
            return Pending(str(document["tx"]), _counters(document["counters"]))
        except (ValueError, TypeError, IndexError, KeyError, AttributeError):
            log.warning("the saved traffic report in flight cannot be read; dropped")
            return None

    def begin(self, tx_hash: str, counters: Mapping[str, Counter]) -> None:
        """Before sending a report: what it settles once it lands."""
        document = {"tx": tx_hash, "counters": _document(counters)}
        self._state.set_meta(_PENDING_KEY, json.dumps(document))

    def save(self, counters: Mapping[str, Counter], *, settled: bool = True) -> None:
        """The counters reported; ``settled``: no report is in flight any more."""
        with self._state.transaction():
            self._state.set_meta(_META_KEY, json.dumps(_document(counters)))
            if settled:
                self._state.set_meta(_PENDING_KEY, "")


async def _landed(chain: ChainClient, tx_hash: str) -> bool:
    try:
        await chain.transaction(tx_hash)  # pending in the open block, or included
    except NotFound:
        return False
    return True


async def report_once(
    chain: ChainClient, book: TrafficBook, links: Mapping[str, str], now: Mapping[str, Counter]
) -> dict[int, int]:
    """Report every contract's traffic since the last report; returns what the ledger took.

    A report whose answer was lost (the node stopped, the ledger went away) is looked up
    first: if it landed its counters count as reported. LedgerUnavailable (after saving
    what was reported) when the ledger cannot be reached.
    """
    last = book.load()
    pending = book.pending()
    if pending is not None:
        if await _landed(chain, pending.tx_hash):
            last = {**last, **pending.counters}
        book.save(last)
    # Links of machines that are gone are forgotten; the others keep their last counters
    # until their contract's report lands.
    present = set(links.values())
    kept = {name: counter for name, counter in last.items() if name in present}
    reported: dict[int, int] = {}
    by_contract: dict[int, list[str]] = {}
    for workload_id, link in links.items():
        by_contract.setdefault(_contract_of(workload_id), []).append(link)
    settled = True
    try:
        for contract_id, moved in sorted(traffic_since(last, now, links).items()):
            counters = {link: now[link] for link in by_contract[contract_id] if link in now}
            done = True
            if moved > 0:
                tx = await chain.sign(
                    "contracts.report_traffic",
                    {"contract_id": contract_id, "bytes": min(moved, MAX_REPORT)},
                )
                book.begin(tx.hash, counters)
                settled = False
                try:
                    await chain.submit_signed(tx)
                except TransactionRejected as exc:
                    chain.forget_nonce()
                    done = exc.code in _FINAL_REFUSALS
                    log.warning(
                        "traffic of contract %s refused by the ledger: %s", contract_id, exc.message
                    )
                except BaseException:
                    chain.forget_nonce()
                    raise  # in flight: the next round asks the ledger whether it landed
                else:
                    reported[contract_id] = moved
            if done:
                kept.update(counters)
            book.save(kept)
            settled = True
    finally:
        book.save(kept, settled=settled)
    return reported


async def report_traffic(
    chain: ChainClient,
    state: LocalState,
    links: Callable[[], Mapping[str, str]],
    *,
    interval: float = TRAFFIC_INTERVAL,
    poll: float = 10.0,
    counters: Callable[[], Awaitable[Mapping[str, Counter]]] = read_counters,
) -> None:
    """Report traffic at start and then every ``interval`` seconds of ledger time, forever.

    Ledger time is the newest block's timestamp, read every ``poll`` seconds. ``links``
    names each machine's link (workload id -> link name in this netns). A ledger that
    cannot be reached is asked again at the next poll; only cancellation ends the loop.
    """
    book = TrafficBook(state)
    last_report: int | None = None
    while True:
        try:
            ledger_now = int((await chain.head())["timestamp"])
            if last_report is None or ledger_now - last_report >= interval:
                started = time.monotonic()
                reported = await report_once(chain, book, links(), await counters())
                last_report = ledger_now
                if reported:
                    log.info(
                        "reported traffic of %d contract(s) in %.1f s",
                        len(reported),
                        time.monotonic() - started,
                    )
        except LedgerUnavailable as exc:
            log.warning("traffic report: the ledger cannot be reached (%s); trying again", exc)
        except ChainError as exc:
            log.warning("traffic report: the ledger answered %s; trying again", exc)
        except NodeError as exc:
            log.warning("traffic report: cannot read the counters (%s); trying again", exc)
        await asyncio.sleep(poll)

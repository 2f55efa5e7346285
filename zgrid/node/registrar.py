"""The node on the ledger: its twin and node record made or brought up to date, its uptime.

:func:`ensure_registered` runs on every start. It makes the node's twin if its
account has none, registers the node under the farm (with the farmer's join token)
or, when the record says other resources, another farm, location or interfaces,
updates it; when the record already says what the node is, it sends nothing. Each
step is read back from the ledger first, so a start interrupted between two steps
(or whose answer was lost) finishes the remaining ones next time.

:func:`report_uptime` is the loop that tells the ledger the node is up, every
``interval`` seconds of ledger time (block timestamps, never the node's clock: the
ledger refuses a report more than 60 s away from its block's time), riding out
ledger outages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from zgrid.chain import (
    ChainClient,
    Interface,
    LedgerUnavailable,
    Location,
    PublicConfig,
    RejectCode,
    TransactionRejected,
)
from zgrid.node.errors import NodeConfigError
from zgrid.types import Capacity

__all__ = ["UPTIME_INTERVAL", "Registration", "ensure_registered", "read_uptime", "report_uptime"]

log = logging.getLogger(__name__)
T = TypeVar("T")

UPTIME_INTERVAL = 2400.0  # 40 minutes of ledger time (FORMATS.md)
PROC_UPTIME = Path("/proc/uptime")
_RESOURCE_KEYS = ("cru", "mru", "sru", "hru")


@dataclass(frozen=True)
class Registration:
    """Who the node is on the ledger."""

    twin_id: int
    node_id: int


def _fee_error(address: str, identity_dir: Path | None, refusal: TransactionRejected) -> str:
    faucet = (
        f"; on a dev chain, `zgrid --home {identity_dir} account faucet`"
        if identity_dir is not None
        else ""
    )
    return (
        f"the node's account {address} cannot pay the ledger's transaction fee "
        f"({refusal.message}); send it tokens with `zgrid account transfer {address} 10`"
        f"{faucet}, then start the node again"
    )


def _join_token_needed(farm_id: int, address: str, why: str) -> str:
    return (
        f"{why} needs a join token from the farmer of farm {farm_id}: the farmer runs "
        f"`zgrid farm join-token {farm_id} --node {address}` and the node is started "
        "with the token it prints (--join-token)"
    )


async def _submitting(address: str, identity_dir: Path | None, step: str, call: Awaitable[T]) -> T:
    """Await ``call`` (a submission); a refusal becomes NodeConfigError naming ``step``."""
    try:
        result = await call
    except TransactionRejected as exc:
        if exc.code == RejectCode.INSUFFICIENT_BALANCE:
            raise NodeConfigError(_fee_error(address, identity_dir, exc)) from exc
        raise NodeConfigError(f"the ledger refused to {step}: {exc.message}") from exc
    return result


async def _own_node(chain: ChainClient, twin_id: int) -> dict[str, Any] | None:
    found = await chain.query("nodes", twin_id=twin_id)
    items: list[dict[str, Any]] = found["items"]
    return items[0] if items else None


def _record_fields(
    farm_id: int,
    resources: Capacity,
    location: Location | None,
    interfaces: list[Interface] | None,
    existing: dict[str, Any] | None,
    *,
    public_config: PublicConfig | None = None,
) -> dict[str, Any]:
    """The arguments of nodes.register/update: what the node says, the rest as recorded."""
    fields: dict[str, Any] = {
        "farm_id": farm_id,
        "resources": {key: getattr(resources, key) for key in _RESOURCE_KEYS},
    }
    if existing is not None:
        # nodes.update replaces the record: keep what this start does not decide.
        for key in ("location", "interfaces", "public_config", "secure_boot", "virtualized"):
            fields[key] = existing[key]
        fields["serial"] = existing["serial"]
    if location is not None:
        fields["location"] = location.model_dump()
    if interfaces is not None:
        fields["interfaces"] = [interface.model_dump() for interface in interfaces]
    if public_config is not None:
        fields["public_config"] = public_config.model_dump()
    return fields


async def ensure_registered(
    chain: ChainClient,
    *,
    farm_id: int,
    resources: Capacity,
    join_token: str | None,
    location: Location | None = None,
    interfaces: list[Interface] | None = None,
    identity_dir: Path | None = None,
    public_config: PublicConfig | None = None,
) -> Registration:
    """Make the ledger's twin and node record of ``chain.identity`` say what this node is.

    ``join_token`` (the farmer's, from `zgrid farm join-token`) is needed to register and
    to move to another farm, not to update. ``location``, ``interfaces`` and
    ``public_config`` (a gateway node's public address and domain) left out keep what the
    record says. ``identity_dir`` (where the node's key lives) only makes the
    message of an unfunded account name the faucet command that works for it.

    NodeConfigError when the ledger refuses (no join token, an unusable one, an account
    that cannot pay the fee), with what to do; LedgerUnavailable when it cannot be reached.
    """
    if chain.identity is None:
        raise NodeConfigError("the node's ledger client has no identity to sign with")
    address = chain.identity.address
    twin = await chain.twin_of(address)
    if twin is None:
        twin_id = await _submitting(
            address, identity_dir, "create the node's twin", chain.create_twin()
        )
        log.info("created twin %d for the node's account %s", twin_id, address)
    else:
        twin_id = int(twin["id"])

    existing = await _own_node(chain, twin_id)
    if existing is None:
        if join_token is None:
            raise NodeConfigError(
                _join_token_needed(farm_id, address, f"registering this node in farm {farm_id}")
            )
        fields = _record_fields(
            farm_id, resources, location, interfaces, None, public_config=public_config
        )
        try:
            node_id = await _submitting(
                address,
                identity_dir,
                f"register the node in farm {farm_id}",
                chain.register_node(join_token=join_token, **fields),
            )
        except (NodeConfigError, LedgerUnavailable):
            # A registration whose answer was lost may have landed after all.
            landed = await _own_node(chain, twin_id)
            if landed is None:
                raise
            node_id = int(landed["id"])
        log.info("registered node %d in farm %d", node_id, farm_id)
        return Registration(twin_id=twin_id, node_id=int(node_id))

    node_id = int(existing["id"])
    fields = _record_fields(
        farm_id, resources, location, interfaces, existing, public_config=public_config
    )
    if all(existing[key] == value for key, value in fields.items()):
        return Registration(twin_id=twin_id, node_id=node_id)
    if existing["farm_id"] != farm_id:
        if join_token is None:
            raise NodeConfigError(
                _join_token_needed(
                    farm_id,
                    address,
                    f"moving node {node_id} from farm {existing['farm_id']} to farm {farm_id}",
                )
            )
        fields["join_token"] = join_token
    changed = sorted(key for key, value in fields.items() if existing.get(key) != value)
    await _submitting(address, identity_dir, f"update node {node_id}", chain.update_node(**fields))
    log.info("updated node %d on the ledger: %s", node_id, ", ".join(changed))
    reserved = existing.get("reserved", {})
    short = [key for key in _RESOURCE_KEYS if getattr(resources, key) < reserved.get(key, 0)]
    if short:
        log.warning(
            "node %d now declares less %s than its contracts already reserve",
            node_id,
            ", ".join(short),
        )
    return Registration(twin_id=twin_id, node_id=node_id)


def read_uptime(path: Path = PROC_UPTIME) -> int:
    """Whole seconds since the machine booted (the first number of /proc/uptime)."""
    return int(float(path.read_text().split()[0]))


async def report_uptime(
    chain: ChainClient,
    *,
    interval: float = UPTIME_INTERVAL,
    poll: float = 30.0,
    uptime: Callable[[], int] = read_uptime,
    clock: Callable[[], float] = time.time,
) -> None:
    """Report ``uptime()`` now and then every ``interval`` seconds of ledger time, forever.

    Ledger time is the newest block's timestamp, read every ``poll`` seconds (sooner
    when a report is due sooner). The report's timestamp is that block time plus what
    ``clock`` says passed since it was read, so a node whose own clock is off still
    lands inside the ledger's ±60 s. A ledger that cannot be reached or refuses the
    report is logged and asked again at the next poll; only cancellation ends the loop.
    """
    last_report: int | None = None
    while True:
        wait = poll
        try:
            head = await chain.head()
            read_at = clock()
            ledger_now = int(head["timestamp"])
            if last_report is None or ledger_now - last_report >= interval:
                timestamp = ledger_now + max(0, round(clock() - read_at))
                await chain.report_uptime(uptime(), timestamp)
                last_report = ledger_now
                log.debug("reported uptime at ledger time %d", ledger_now)
            wait = min(poll, max(0.0, last_report + interval - ledger_now))
        except LedgerUnavailable as exc:
            log.warning("uptime report: the ledger cannot be reached (%s); trying again", exc)
        except TransactionRejected as exc:
            log.error("uptime report refused by the ledger: %s; trying again", exc.message)
        await asyncio.sleep(max(wait, min(poll, 0.5)))

"""Carrying out a plan on the ledger: all of it, or none of it.

Order of work, so that nothing is ever lost track of:

1. The record gets every deployment hash about to be submitted, and is saved.
2. Each transaction is signed and its hash kept before it is sent; all are sent, then all
   awaited (one block).
3. The nodes' results are followed until each new version settled, or one failed.
4. All ok: the contracts the plan drops are cancelled and the record says ``deployed``.
   Anything failed, or the run was interrupted (Ctrl-C, SIGTERM): every contract this run
   created is cancelled, every contract it updated goes back to what ran before, and the
   node's own error is raised as DeployFailed. The rollback is shielded from a second
   cancellation and bounded in time.

A run killed outright (kill -9) leaves the record in ``deploying``/``applying``; the
hashes in it let the next run find every contract it made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from zgrid.chain import ChainClient, LedgerUnavailable, NotFound, TransactionRejected
from zgrid.client.builder import item_of
from zgrid.client.errors import DeployFailed, InvalidAnswer
from zgrid.client.plan import ContractChange, Plan
from zgrid.client.records import ContractEntry, DeploymentRecord
from zgrid.client.watch import Expectation, Outcome, ProgressCallback, watch_results
from zgrid.errors import ZgridError
from zgrid.identity import Identity, public_key_from_address
from zgrid.node import seal_deployment
from zgrid.types import (
    Deployment,
    Volume,
    Workload,
    ZMount,
    parse_deployment,
    same_workload,
    sign_deployment,
)

__all__ = ["Deployer", "SaveRecord", "rollback_deployment"]

log = logging.getLogger(__name__)

SaveRecord = Callable[[DeploymentRecord], None]
_LIVE = ("created", "grace_period")
_ROLLBACK_TIMEOUT = 120.0  # seconds a node gets to settle a rollback before we say so
_ROLLBACK_LIMIT = 300.0  # seconds a whole rollback may take
_UNSURE_GRACE = 5.0  # seconds to learn whether a transaction cut short reached the ledger
_MAX_PAGES = 1000


@dataclass
class _Submitted:
    change: ContractChange
    signed: Deployment
    tx_hash: str
    contract_id: int = 0
    included: bool = False
    refused: bool = False  # its node refused the new version and still runs the one before


class Deployer:
    """Makes a plan real through ``chain`` (signing as ``identity``'s twin ``twin_id``)."""

    def __init__(
        self,
        *,
        chain: ChainClient,
        identity: Identity,
        twin_id: int,
        save: SaveRecord,
        drop: SaveRecord,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self._chain = chain
        self._identity = identity
        self._twin_id = twin_id
        self._save = save
        self._drop = drop  # a deploy rolled back leaves no record
        self._timeout = timeout
        self._on_progress = on_progress
        self._on_step = on_step or (lambda _text: None)
        self._node_keys: dict[int, bytes] = {}

    # -- deploy and apply ----------------------------------------------------------------------

    async def execute(self, plan: Plan, record: DeploymentRecord) -> DeploymentRecord:
        """Carry ``plan`` out; the record afterwards, or DeployFailed after the rollback."""
        fresh = not any(entry.deployment for entry in record.contracts)
        record.claim("deploying" if fresh else "applying")
        work = [c for c in plan.changes if c.action in ("create", "update")]
        signed = {id(c): self._sign(c) for c in work}
        for change in work:
            entry = record.entry(change.node_id)
            if entry is None:
                entry = ContractEntry(node_id=change.node_id)
                record.contracts.append(entry)
            deployment = signed[id(change)]
            entry.pending = deployment.to_json_dict()
            entry.pending_hash = deployment.hash_hex()
            record.hashes.append(entry.pending_hash)
        self._save(record)  # before anything reaches the ledger
        submitted: list[_Submitted] = []
        try:
            failure = await self._submit(work, signed, submitted, record)
            if not failure:
                failure = await self._settle(submitted)
            if not failure:
                await self._finish(plan, record, submitted)
                return record
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._on_step("interrupted: rolling back what this run made")
            summary, _ = await self._shielded_rollback(record, submitted, fresh=fresh)
            self._on_step(summary)
            raise
        except Exception as exc:  # the ledger went away mid-way, an answer made no sense ...
            failure = str(exc) if isinstance(exc, ZgridError) else f"{type(exc).__name__}: {exc}"
        summary, complete = await self._shielded_rollback(record, submitted, fresh=fresh)
        raise DeployFailed(f"{failure}; {summary}", rolled_back=complete)

    def _sign(self, change: ContractChange) -> Deployment:
        assert change.deployment is not None
        return sign_deployment(change.deployment, self._twin_id, self._identity)

    async def _submit(
        self,
        work: Sequence[ContractChange],
        signed: dict[int, Deployment],
        submitted: list[_Submitted],
        record: DeploymentRecord,
    ) -> str:
        """Create and update the contracts; '' when the ledger took them all, else why not."""
        if not work:
            return ""
        creates = sum(1 for c in work if c.action == "create")
        self._on_step(f"submitting {creates} new and {len(work) - creates} updated contract(s)")
        failure = ""
        for change in work:
            deployment = signed[id(change)]
            call, args = await self._contract_call(change, deployment)
            tx = await self._chain.sign(call, args)
            # Known before it is sent: a rollback can ask the ledger what became of it.
            submitted.append(_Submitted(change, deployment, tx.hash))
            try:
                await self._chain.submit_signed(tx, wait=False)
            except TransactionRejected as exc:
                self._chain.forget_nonce()
                submitted.pop()  # refused: it did not reach a block
                failure = f"the ledger refused the contract on node {change.node_id}: {exc}"
                break
            except BaseException:
                self._chain.forget_nonce()
                raise
        # Whatever went in is awaited, so a failure can undo it.
        for item in submitted:
            status = await self._chain.wait_included(item.tx_hash, timeout=60)
            item.contract_id = _contract_id(status, item.change)
            item.included = True
            entry = record.entry(item.change.node_id)
            assert entry is not None
            entry.contract_id = item.contract_id
        self._save(record)
        return failure

    async def _contract_call(
        self, change: ContractChange, deployment: Deployment
    ) -> tuple[str, dict[str, Any]]:
        sealed = seal_deployment(deployment, await self._node_key(change.node_id))
        capacity = deployment.capacity()
        declared = {
            "cru": capacity.cru,
            "mru": capacity.mru,
            "sru": capacity.sru,
            "hru": capacity.hru,
        }
        if change.action == "create":
            return "contracts.create_node_contract", {
                "node_id": change.node_id,
                "deployment_hash": deployment.hash_hex(),
                "sealed_deployment": sealed,
                "public_ips": change.public_ips,
                "approvers": [],
                "capacity": declared,
            }
        return "contracts.update_node_contract", {
            "contract_id": change.contract_id,
            "deployment_hash": deployment.hash_hex(),
            "sealed_deployment": sealed,
            "capacity": declared,
        }

    async def _node_key(self, node_id: int) -> bytes:
        key = self._node_keys.get(node_id)
        if key is None:
            node = await self._chain.node(node_id)
            twin = await self._chain.twin(int(node["twin_id"]))
            key = self._node_keys[node_id] = public_key_from_address(str(twin["account"]))
        return key

    async def _settle(self, submitted: list[_Submitted]) -> str:
        """Follow the nodes until every new version settled; '' when all is ok."""
        if not submitted:
            return ""
        nodes = sorted({item.change.node_id for item in submitted})
        self._on_step(f"waiting for node(s) {', '.join(map(str, nodes))}")
        outcomes = await watch_results(
            self._chain,
            self._identity,
            [_expect(item) for item in submitted],
            timeout=self._timeout,
            on_progress=self._on_progress,
        )
        refused = {o.expectation.contract_id for o in outcomes if o.refused}
        for item in submitted:
            item.refused = item.contract_id in refused
        return "; ".join(outcome.failure for outcome in outcomes if outcome.failure)

    async def _finish(
        self, plan: Plan, record: DeploymentRecord, submitted: Sequence[_Submitted]
    ) -> None:
        for item in submitted:
            entry = record.entry(item.change.node_id)
            assert entry is not None
            entry.deployment, entry.pending, entry.pending_hash = entry.pending, None, ""
        dropped = [c for c in plan.changes if c.action == "cancel"]
        if dropped:
            self._on_step(f"cancelling {len(dropped)} contract(s) no longer needed")
            failed = await self.cancel([c.contract_id for c in dropped])
            for reason in failed.values():
                self._on_step(f"warning: {reason} (the next apply tries again)")
            gone = {c.node_id for c in dropped if c.contract_id not in failed}
            record.contracts = [e for e in record.contracts if e.node_id not in gone]
        record.status = "deployed"
        self._save(record)

    # -- rollback ------------------------------------------------------------------------------

    async def _shielded_rollback(
        self, record: DeploymentRecord, submitted: list[_Submitted], *, fresh: bool
    ) -> tuple[str, bool]:
        """The rollback, safe from a second cancellation and bounded in time: what it did,
        and whether it undid everything."""
        outcome = (f"not rolled back in time: `zgrid destroy {record.name}` cleans up", False)
        with anyio.CancelScope(shield=True), anyio.move_on_after(_ROLLBACK_LIMIT):
            try:
                outcome = await self._rollback(record, submitted, fresh=fresh)
            except Exception as exc:
                outcome = (
                    f"the rollback failed too ({exc}): `zgrid destroy {record.name}` cleans "
                    "up once the ledger answers",
                    False,
                )
        return outcome

    async def _rollback(
        self, record: DeploymentRecord, submitted: list[_Submitted], *, fresh: bool
    ) -> tuple[str, bool]:
        """Undo what ``submitted`` did; says what was undone (and what could not be)."""
        problems: list[str] = []
        await self._learn_outcomes(submitted, problems)
        created = [i for i in submitted if i.change.action == "create" and i.included]
        updated = [i for i in submitted if i.change.action == "update" and i.included]
        done: list[str] = []
        # New contracts: those created, and any the ledger has under a hash only this run
        # submitted (one an interruption kept us from hearing about).
        new_nodes = {e.node_id for e in record.contracts if not e.deployment}
        ids = {item.contract_id for item in created if item.contract_id}
        pending = {e.pending_hash for e in record.contracts if e.node_id in new_nodes}
        ids |= {
            int(c["id"]) for c in await self.live_contracts() if c["deployment_hash"] in pending
        }
        failed: dict[int, str] = {}
        if ids:
            failed = await self.cancel(sorted(ids))
            problems += failed.values()
            cancelled = sorted(ids - set(failed))
            if cancelled:
                done.append("cancelled contract(s) " + ", ".join(map(str, cancelled)))
        kept_nodes = {i.change.node_id for i in created if i.contract_id in failed}
        record.contracts = [
            e for e in record.contracts if e.node_id not in new_nodes or e.node_id in kept_nodes
        ]
        if updated:
            restored = await self._restore(record, updated, problems)
            if restored:
                done.append(
                    "contract(s) " + ", ".join(map(str, restored)) + " back to what ran before"
                )
        for entry in record.contracts:
            if entry.node_id not in kept_nodes:
                entry.pending, entry.pending_hash = None, ""
        if fresh and not problems:
            self._drop(record)
        else:
            record.status = "destroying" if problems else "deployed"
            self._save(record)
        summary = "rolled back: " + ("; ".join(done) if done else "nothing had been made")
        if problems:
            summary += (
                "; but " + "; ".join(problems) + f" (`zgrid destroy {record.name}` cleans up)"
            )
        return summary, not problems

    async def _learn_outcomes(self, submitted: list[_Submitted], problems: list[str]) -> None:
        """For each transaction sent but not seen in a block: did it land, and as what?"""
        for item in submitted:
            if item.included:
                continue
            try:
                status = await self._chain.wait_included(item.tx_hash, timeout=_UNSURE_GRACE)
            except NotFound:
                continue  # never reached the ledger
            except LedgerUnavailable as exc:
                problems.append(f"what became of transaction {item.tx_hash} is unknown: {exc}")
                continue
            item.contract_id = _contract_id(status, item.change)
            item.included = True

    async def _restore(
        self, record: DeploymentRecord, updated: Sequence[_Submitted], problems: list[str]
    ) -> list[int]:
        restored: list[int] = []
        expectations: list[Expectation] = []
        for item in updated:
            entry = record.entry(item.change.node_id)
            previous = item.change.previous
            if entry is None or previous is None:
                continue
            if item.refused:
                # The node kept what ran: send that again under the ledger's next version.
                back = previous.model_copy(update={"version": item.signed.version + 1})
                back = parse_deployment(back.to_json_bytes())
            else:
                back = rollback_deployment(previous, item.signed)
            back = sign_deployment(back, self._twin_id, self._identity)
            change = ContractChange(
                "update", item.change.node_id, item.contract_id, back, item.signed, ()
            )
            try:
                call, args = await self._contract_call(change, back)
                await self._chain.submit(call, args)
            except (TransactionRejected, LedgerUnavailable) as exc:
                problems.append(f"contract {item.contract_id} could not be restored: {exc}")
                continue
            record.hashes.append(back.hash_hex())
            entry.deployment = back.to_json_dict()
            restored.append(item.contract_id)
            expectations.append(_expect(_Submitted(change, back, "", item.contract_id)))
        if expectations:
            self._save(record)
            outcomes: list[Outcome] = await watch_results(
                self._chain, self._identity, expectations, timeout=_ROLLBACK_TIMEOUT
            )
            problems += [f"restoring: {o.failure}" for o in outcomes if o.failure]
        return restored

    # -- destroy -------------------------------------------------------------------------------

    async def find_contracts(self, record: DeploymentRecord) -> list[int]:
        """Every live contract of the record: by id, and by hash for ids never learnt."""
        known = set(record.contract_ids())
        hashes = set(record.hashes)
        for entry in record.contracts:
            if entry.pending_hash:
                hashes.add(entry.pending_hash)
        return sorted(
            int(contract["id"])
            for contract in await self.live_contracts()
            if contract["id"] in known or contract["deployment_hash"] in hashes
        )

    async def live_contracts(self) -> list[dict[str, Any]]:
        """Every node contract of this twin the ledger has not deleted (read page by page)."""
        found: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            answer = await self._chain.query(
                "contracts", twin_id=self._twin_id, type="node", page=page, size=1000
            )
            items, total, size = _page(answer)
            for contract in items:
                if contract["state"] in _LIVE:
                    found.append(contract)
            if page * size >= total or not items:
                return found
        raise InvalidAnswer(f"the ledger lists more than {_MAX_PAGES} pages of contracts")

    async def cancel(self, contract_ids: Sequence[int]) -> dict[int, str]:
        """Cancel each contract (all submitted, then awaited); those that were not, and why."""
        failed: dict[int, str] = {}
        hashes: list[tuple[int, str]] = []
        for contract_id in contract_ids:
            try:
                answer = await self._chain.submit(
                    "contracts.cancel", {"contract_id": contract_id}, wait=False
                )
            except TransactionRejected as exc:
                if not await self.ended(contract_id):
                    failed[contract_id] = f"contract {contract_id} was not cancelled: {exc}"
                continue
            hashes.append((contract_id, str(answer["hash"])))
        for contract_id, tx_hash in hashes:
            try:
                await self._chain.wait_included(tx_hash, timeout=60)
            except LedgerUnavailable as exc:
                failed[contract_id] = f"the cancel of contract {contract_id} was not seen: {exc}"
        return failed

    async def ended(self, contract_id: int) -> bool:
        """The ledger has deleted the contract (or never had it)."""
        try:
            contract = await self._chain.contract(contract_id)
        except NotFound:
            return True
        return contract.get("state") == "deleted"


def _contract_id(status: dict[str, Any], change: ContractChange) -> int:
    if change.action != "create":
        return change.contract_id
    try:
        return int(status["result"]["contract_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidAnswer(f"the ledger's answer names no new contract: {status!r:.200}") from exc


def _page(answer: Any) -> tuple[list[dict[str, Any]], int, int]:
    try:
        items = list(answer["items"])
        total, size = int(answer["total"]), int(answer["size"])
        if (
            size < 1
            or total < 0
            or not all(
                isinstance(c, dict) and {"id", "state", "deployment_hash"} <= c.keys()
                for c in items
            )
        ):
            raise ValueError("a page out of shape")
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidAnswer(f"the ledger's page of contracts is not readable: {exc}") from exc
    return items, total, size


def _expect(item: _Submitted) -> Expectation:
    workloads: dict[str, str] = {}
    types: dict[str, str] = {}
    for workload in item.signed.workloads:
        workloads[workload.name] = item_of(workload) or workload.name
        types[workload.name] = str(workload.type)
    return Expectation(
        contract_id=item.contract_id,
        node_id=item.change.node_id,
        version=item.signed.version,
        workloads=workloads,
        types=types,
    )


def rollback_deployment(previous: Deployment, failed: Deployment) -> Deployment:
    """The version after ``failed`` (which the node applied) that runs what ``previous`` ran.

    A workload ``failed`` left as it was keeps its object (and version); so does a disk it
    grew (a disk cannot shrink, and its data is kept); every other one of ``previous``
    comes back with the new version, as the update rules want.
    """
    version = failed.version + 1
    kept = {w.name: w for w in failed.workloads}
    workloads: list[Workload] = []
    for workload in previous.workloads:
        same = kept.get(workload.name)
        if same is not None and (same_workload(same, workload) or _grown(workload, same)):
            workloads.append(same)
        else:
            workloads.append(workload.model_copy(update={"version": version, "result": None}))
    document = failed.model_copy(
        update={
            "version": version,
            "workloads": workloads,
            "signature_requirement": failed.signature_requirement.model_copy(
                update={"signatures": []}
            ),
        }
    )
    return parse_deployment(document.to_json_bytes())


def _grown(before: Workload, after: Workload) -> bool:
    return (
        isinstance(before.data, ZMount | Volume)
        and isinstance(after.data, type(before.data))
        and after.data.size > before.data.size
    )

"""Carrying out a plan on the ledger: all of it, or none of it.

Order of work, so that nothing is ever lost track of:

1. The record gets every deployment hash about to be submitted, and is saved.
2. Contracts are created and updated (all submitted, then all awaited: one block).
3. The nodes' results are followed until each new version settled.
4. All ok: the contracts the plan drops are cancelled and the record says ``deployed``.
   Anything failed, or the run was interrupted (Ctrl-C, SIGTERM): every contract this run
   created is cancelled, every contract it updated goes back to what ran before, and the
   node's own error is raised as DeployFailed.

A run killed outright (kill -9) leaves the record in ``deploying``/``applying``; the
hashes in it let :meth:`Deployer.destroy` find every contract the run made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zgrid.chain import ChainClient, LedgerUnavailable, NotFound, TransactionRejected
from zgrid.client.builder import item_of
from zgrid.client.errors import DeployFailed
from zgrid.client.plan import ContractChange, Plan
from zgrid.client.records import ContractEntry, DeploymentRecord
from zgrid.client.watch import Expectation, Outcome, ProgressCallback, watch_results
from zgrid.identity import Identity, public_key_from_address
from zgrid.node import seal_deployment
from zgrid.types import Deployment, Workload, parse_deployment, sign_deployment

__all__ = ["Deployer", "SaveRecord", "rollback_deployment"]

log = logging.getLogger(__name__)

SaveRecord = Callable[[DeploymentRecord], None]
_LIVE = ("created", "grace_period")
_ROLLBACK_TIMEOUT = 120.0  # seconds a node gets to settle a rollback before we say so


@dataclass
class _Submitted:
    change: ContractChange
    signed: Deployment
    tx_hash: str
    contract_id: int = 0


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
            await self._rollback(record, submitted, fresh=fresh)
            raise
        summary = await self._rollback(record, submitted, fresh=fresh)
        raise DeployFailed(f"{failure}; {summary}")

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
            try:
                call, args = await self._contract_call(change, deployment)
                answer = await self._chain.submit(call, args, wait=False)
            except TransactionRejected as exc:
                failure = f"the ledger refused the contract on node {change.node_id}: {exc}"
                break
            submitted.append(_Submitted(change, deployment, str(answer["hash"])))
        # Whatever went in is awaited, so a failure can undo it.
        for item in submitted:
            status = await self._chain.wait_included(item.tx_hash, timeout=60)
            if item.change.action == "create":
                item.contract_id = int(status["result"]["contract_id"])
            else:
                item.contract_id = item.change.contract_id
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

    async def _settle(self, submitted: Sequence[_Submitted]) -> str:
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
        return "; ".join(outcome.failure for outcome in outcomes if not outcome.ok)

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
            await self.cancel([c.contract_id for c in dropped])
            gone = {c.node_id for c in dropped}
            record.contracts = [e for e in record.contracts if e.node_id not in gone]
        record.status = "deployed"
        self._save(record)

    # -- rollback ------------------------------------------------------------------------------

    async def _rollback(
        self, record: DeploymentRecord, submitted: Sequence[_Submitted], *, fresh: bool
    ) -> str:
        """Undo what ``submitted`` did; says what was undone (and what could not be)."""
        created = [item for item in submitted if item.change.action == "create"]
        updated = [item for item in submitted if item.change.action == "update"]
        done: list[str] = []
        problems: list[str] = []
        for item in created:
            if not item.contract_id:  # interrupted before its inclusion was seen
                try:
                    status = await self._chain.wait_included(item.tx_hash, timeout=30)
                    item.contract_id = int(status["result"]["contract_id"])
                except (LedgerUnavailable, KeyError, TypeError, ValueError):
                    pass  # the sweep below finds it by its hash
        # New contracts: those created, and any the ledger has under a hash only this run
        # submitted (one an interruption kept us from hearing about).
        new_nodes = {e.node_id for e in record.contracts if not e.deployment}
        ids = {item.contract_id for item in created if item.contract_id}
        sweep = DeploymentRecord(
            name=record.name,
            network=record.network,
            twin_id=record.twin_id,
            status=record.status,
            hashes=[e.pending_hash for e in record.contracts if e.node_id in new_nodes],
        )
        ids |= set(await self.find_contracts(sweep))
        if ids:
            problems += await self.cancel(sorted(ids))
            done.append("cancelled contract(s) " + ", ".join(map(str, sorted(ids))))
        record.contracts = [e for e in record.contracts if e.node_id not in new_nodes]
        if updated:
            restored = await self._restore(record, updated, problems)
            if restored:
                done.append(
                    "contract(s) " + ", ".join(map(str, restored)) + " back to what ran before"
                )
        for entry in record.contracts:
            entry.pending, entry.pending_hash = None, ""
        if fresh and not problems:
            self._drop(record)
        else:
            record.status = "deployed"
            self._save(record)
        summary = "rolled back: " + ("; ".join(done) if done else "nothing had been made")
        if problems:
            summary += "; but " + "; ".join(problems) + " (`zgrid destroy` cleans up)"
        return summary

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
            back = sign_deployment(
                rollback_deployment(previous, item.signed), self._twin_id, self._identity
            )
            change = ContractChange(
                "update", item.change.node_id, item.contract_id, back, item.signed, ()
            )
            try:
                call, args = await self._contract_call(change, back)
                answer = await self._chain.submit(call, args)
            except (TransactionRejected, LedgerUnavailable) as exc:
                problems.append(f"contract {item.contract_id} could not be restored: {exc}")
                continue
            log.debug("restore of contract %s included: %s", item.contract_id, answer)
            record.hashes.append(back.hash_hex())
            entry.deployment = back.to_json_dict()
            restored.append(item.contract_id)
            expectations.append(_expect(_Submitted(change, back, "", item.contract_id)))
        if expectations:
            self._save(record)
            outcomes: list[Outcome] = await watch_results(
                self._chain, self._identity, expectations, timeout=_ROLLBACK_TIMEOUT
            )
            problems += [f"restoring: {o.failure}" for o in outcomes if not o.ok]
        return restored

    # -- destroy -------------------------------------------------------------------------------

    async def find_contracts(self, record: DeploymentRecord) -> list[int]:
        """Every live contract of the record: by id, and by hash for ids never learnt."""
        known = set(record.contract_ids())
        hashes = set(record.hashes)
        for entry in record.contracts:
            if entry.pending_hash:
                hashes.add(entry.pending_hash)
        found: set[int] = set()
        page = 1
        while True:
            answer = await self._chain.query(
                "contracts", twin_id=self._twin_id, type="node", page=page, size=1000
            )
            for contract in answer["items"]:
                if contract["state"] not in _LIVE:
                    continue
                if contract["id"] in known or contract["deployment_hash"] in hashes:
                    found.add(int(contract["id"]))
            if page * int(answer["size"]) >= int(answer["total"]) or not answer["items"]:
                break
            page += 1
        return sorted(found)

    async def cancel(self, contract_ids: Sequence[int]) -> list[str]:
        """Cancel each contract (all submitted, then awaited); what could not be cancelled."""
        problems: list[str] = []
        hashes: list[tuple[int, str]] = []
        for contract_id in contract_ids:
            try:
                answer = await self._chain.submit(
                    "contracts.cancel", {"contract_id": contract_id}, wait=False
                )
            except TransactionRejected as exc:
                if await self._ended(contract_id):
                    continue
                problems.append(f"contract {contract_id} was not cancelled: {exc}")
                continue
            hashes.append((contract_id, str(answer["hash"])))
        for contract_id, tx_hash in hashes:
            try:
                await self._chain.wait_included(tx_hash, timeout=60)
            except LedgerUnavailable as exc:
                problems.append(f"the cancel of contract {contract_id} was not included: {exc}")
        return problems

    async def _ended(self, contract_id: int) -> bool:
        try:
            contract = await self._chain.contract(contract_id)
        except NotFound:
            return True
        return contract.get("state") == "deleted"


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
    """The version after ``failed`` that runs what ``previous`` ran again.

    A workload ``failed`` left as it was keeps its object (and version); every other one of
    ``previous`` comes back with the new version, as the update rules want.
    """
    version = failed.version + 1
    kept = {w.name: w for w in failed.workloads}
    workloads: list[Workload] = []
    for workload in previous.workloads:
        same = kept.get(workload.name)
        if same is not None and _content(same) == _content(workload):
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


def _content(workload: Workload) -> tuple[object, ...]:
    return (workload.type, workload.data, workload.metadata, workload.description)

"""Telling the ledger what became of a contract: results sealed to the deployer, and the
capacity the contract uses.

A report is a ledger transaction, so identical reports are never sent twice (the digest
of the last one is kept in local state), and reports of one contract are coalesced.
"""

from __future__ import annotations

import hashlib
import logging

from zgrid.chain import ChainClient, ChainError, NotFound, TransactionRejected
from zgrid.identity import public_key_from_address
from zgrid.node.sealing import ResultReport, WorkloadReport, seal_results
from zgrid.node.state import ContractRecord, LocalState, WorkloadRecord
from zgrid.types import Capacity, ResultState, WorkloadResult, parse_deployment

__all__ = ["Reporter", "deployment_state", "result_report"]

log = logging.getLogger(__name__)

_MESSAGE_LIMIT = 1024  # a workload result's message, as zgrid.types allows


def deployment_state(record: ContractRecord, workloads: list[WorkloadRecord]) -> str:
    """One word for the whole deployment: init, ok, error or paused."""
    if record.status == "waiting":
        return ResultState.INIT
    if record.status == "error":
        return ResultState.ERROR
    present = [w for w in workloads if w.intent != "absent"]
    states = {w.state for w in present}
    if ResultState.ERROR in states:
        return ResultState.ERROR
    if ResultState.INIT in states or record.status in ("new", "provisioning"):
        return ResultState.INIT
    if states and states <= {ResultState.PAUSED}:
        return ResultState.PAUSED
    return ResultState.OK


def result_report(record: ContractRecord, workloads: list[WorkloadRecord]) -> ResultReport:
    items = [
        WorkloadReport(
            name=w.name,
            type=w.type,
            version=w.version,
            result=WorkloadResult(
                created=w.created,
                state=ResultState(w.state),
                message=w.message[:_MESSAGE_LIMIT],
                data=w.data,
            ),
        )
        for w in workloads
        if w.intent != "absent"
    ]
    return ResultReport(
        contract_id=record.id,
        version=record.version,
        state=deployment_state(record, workloads),
        message=record.message[:_MESSAGE_LIMIT],
        workloads=items,
        provision_ms=round(record.provision_seconds * 1000),
    )


class Reporter:
    """Submits results and used capacity of this node's contracts to the ledger."""

    def __init__(self, chain: ChainClient, state: LocalState) -> None:
        self._chain = chain
        self._state = state
        self._keys: dict[int, bytes] = {}
        self.sent = 0  # reports submitted (for tests and status)

    async def _deployer_key(self, twin_id: int) -> bytes:
        key = self._keys.get(twin_id)
        if key is None:
            twin = await self._chain.twin(twin_id)
            key = public_key_from_address(str(twin["account"]))
            self._keys[twin_id] = key
        return key

    async def report(self, contract_id: int) -> None:
        """Report the contract's current results (and capacity) unless the ledger has them."""
        record = self._state.contract(contract_id)
        if record is None or record.status == "deleted" or record.version < 0:
            return
        workloads = self._state.workloads(contract_id)
        report = result_report(record, workloads)
        document = report.model_dump(mode="json")
        digest = hashlib.blake2b(
            repr(sorted(document.items())).encode(), digest_size=16
        ).hexdigest()
        if record.reported_version == record.version and record.reported_digest == digest:
            return
        try:
            sealed = seal_results(report, await self._deployer_key(record.twin_id))
            await self._chain.submit(
                "contracts.report_result",
                {"contract_id": contract_id, "version": record.version, "sealed_results": sealed},
                wait=False,
            )
            used = self._used(record, workloads)
            if used != record.used:
                await self._submit_used(contract_id, used)
                record.used = used
        except NotFound:
            return  # the contract is gone; the engine removes it on its next look
        except TransactionRejected as exc:
            log.warning("contract %s: the ledger refused the report: %s", contract_id, exc)
            return
        except ChainError as exc:
            log.warning("contract %s: cannot report yet: %s", contract_id, exc)
            raise
        self.sent += 1
        record.reported_version = record.version
        record.reported_digest = digest
        self._state.put_contract(record)

    async def _submit_used(self, contract_id: int, used: dict[str, int]) -> None:
        resources = {key: used.get(key, 0) for key in ("cru", "mru", "sru", "hru")}
        await self._chain.submit(
            "contracts.report_resources",
            {"contract_id": contract_id, "used": resources},
            wait=False,
        )

    @staticmethod
    def _used(record: ContractRecord, workloads: list[WorkloadRecord]) -> dict[str, int]:
        """What the contract's workloads that were made use; a refused one uses nothing."""
        if record.deployment is None or record.status == "error":
            return {}
        made = {w.name for w in workloads if w.created and w.intent != "absent"}
        deployment = parse_deployment(record.deployment)
        total = Capacity()
        for workload in deployment.workloads:
            if workload.name in made:
                total += workload.data.capacity()
        return {"cru": total.cru, "mru": total.mru, "sru": total.sru, "hru": total.hru}

"""The provision engine: what the ledger says this node must run, made real, one contract at a
time.

Events are only a signal: each names a contract, and the engine reads that contract from
the ledger and converges the machine on it (level-triggered), so an event seen twice, a
missed event or a crash halfway all end in the same state. Workloads are installed in
type order and removed in reverse (the only place that knows the order). Every outcome is
written to local state before the next step, and reported sealed to the deployer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import stamina

from zgrid.chain import ChainClient, ChainError, ChainEvent, NotFound
from zgrid.identity import Identity, public_key_from_address
from zgrid.node.checks import (
    AwaitingApproval,
    check_capacity,
    check_identity,
    check_signatures,
    with_approvals,
)
from zgrid.node.errors import NodeError, ProvisionError
from zgrid.node.primitives.base import Pausable, Primitive, Provisioning, Updatable, WorkloadRef
from zgrid.node.reports import Reporter
from zgrid.node.sealing import unseal_deployment
from zgrid.node.state import ContractRecord, LocalState, WorkloadRecord
from zgrid.types import (
    INSTALL_ORDER,
    Capacity,
    Deployment,
    ResultState,
    UpdateRefused,
    Workload,
    WorkloadType,
    parse_deployment,
    same_workload,
    validate_update,
)

__all__ = ["CONTRACT_EVENTS", "Engine"]

log = logging.getLogger(__name__)

# Events that may change what a node must run; the node's own reports are left out.
CONTRACT_EVENTS = frozenset(
    {
        "ContractCreated",
        "ContractUpdated",
        "ContractCanceled",
        "ContractApproved",
        "ContractStateChanged",
        "ContractGracePeriodStarted",
        "ContractGracePeriodEnded",
    }
)

_ORDER = {kind: index for index, kind in enumerate(INSTALL_ORDER)}
_DATA_UPDATABLE = {WorkloadType.NETWORK, WorkloadType.VOLUME, WorkloadType.ZMOUNT, WorkloadType.ZDB}


def _install_order(workloads: list[Workload]) -> list[Workload]:
    return sorted(workloads, key=lambda w: (_ORDER[WorkloadType(w.type)], w.name))


def _capacity_of(document: Mapping[str, Any] | None) -> Capacity:
    document = document or {}
    return Capacity(
        cru=int(document.get("cru", 0)),
        mru=int(document.get("mru", 0)),
        sru=int(document.get("sru", 0)),
        hru=int(document.get("hru", 0)),
    )


def _ledger_step(running: Deployment, proposed: Deployment) -> tuple[Deployment, Deployment]:
    """The pair of versions ``validate_update`` checks when this node runs ``running`` and its
    contract now holds ``proposed``, a newer version.

    The ledger counts every update, also those this node refused (it kept running the old
    version) and those it never saw (several updates landed before it read the contract,
    and it reads only the newest). So the version step is the ledger's: ``running`` is
    checked as if it were the version just before ``proposed``; an older or equal version
    never gets here. After such skipped versions a workload may carry one of them as its
    version: it counts as unchanged (keeping that version) if its content is the one that
    runs, else as changed by this update, and the type and data rules apply to it as to any
    other. A workload versioned at or before ``running`` follows the rules unchanged.
    """
    if proposed.version == running.version + 1:
        return running, proposed
    runs = {workload.name: workload for workload in running.workloads}
    checked: list[Workload] = []
    for workload in proposed.workloads:
        before = runs.get(workload.name)
        if workload.version <= running.version:
            checked.append(workload)
        elif before is not None and same_workload(before, workload):
            runs[workload.name] = before.model_copy(update={"version": workload.version})
            checked.append(workload)
        else:
            checked.append(workload.model_copy(update={"version": proposed.version}))
    baseline = running.model_copy(
        update={"version": proposed.version - 1, "workloads": list(runs.values())}
    )
    return baseline, proposed.model_copy(update={"workloads": checked})


class Engine:
    """Follows the ledger for one node and keeps its machine equal to its live contracts."""

    def __init__(
        self,
        *,
        chain: ChainClient,
        identity: Identity,
        state: LocalState,
        primitives: Mapping[WorkloadType, Primitive],
        node_id: int,
        capacity: Capacity,
        reconcile_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._chain = chain
        self._identity = identity
        self._state = state
        self._primitives = primitives
        self.node_id = node_id
        self.capacity = capacity
        self._reconcile_interval = reconcile_interval
        self._clock = clock
        self._reporter = Reporter(chain, state)
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self._idle = asyncio.Event()
        self._report_later: set[int] = set()

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Resync with the ledger, then follow it, work the queue and reconcile, forever."""
        async for attempt in stamina.retry_context(
            on=ChainError, attempts=None, timeout=None, wait_initial=0.5, wait_max=10.0
        ):
            with attempt:
                await self.resync()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._work())
            group.create_task(self._follow())
            group.create_task(self._reconcile_forever())
            group.create_task(self._retry_reports())

    def enqueue(self, contract_id: int) -> None:
        if contract_id not in self._queued:
            self._queued.add(contract_id)
            self._idle.clear()
            self._queue.put_nowait(contract_id)

    async def wait_idle(self) -> None:
        """Until the queue is empty and nothing is being worked on."""
        await self._idle.wait()

    async def resync(self) -> None:
        """Queue every contract the ledger holds for this node and every one known locally."""
        if self._state.cursor == 0:
            # A new node reads its contracts whole below; the chain's history of events
            # before now has nothing more to tell it.
            self._state.set_cursor(int((await self._chain.head())["height"]))
        page, size = 1, 100
        while True:
            found = await self._chain.query(
                "contracts", node_id=self.node_id, type="node", page=page, size=size
            )
            for item in found.get("items", []):
                if item.get("state") != "deleted":
                    self.enqueue(int(item["id"]))
            if page * size >= int(found.get("total", 0)):
                break
            page += 1
        for record in self._state.contracts():
            self.enqueue(record.id)
        if self._queue.empty():
            self._idle.set()

    async def _follow(self) -> None:
        async for event in self._chain.events(self._state.cursor, give_up_after=None):
            self.on_event(event)

    def on_event(self, event: ChainEvent) -> None:
        data = event.data
        if event.name in CONTRACT_EVENTS and data.get("node_id") == self.node_id:
            self.enqueue(int(data["contract_id"]))
        self._state.set_cursor(event.height)

    async def _work(self) -> None:
        while True:
            contract_id = await self._queue.get()
            self._queued.discard(contract_id)
            try:
                await self.handle(contract_id)
            except ChainError as exc:
                log.warning(
                    "contract %s: the ledger cannot be read now (%s); retrying", contract_id, exc
                )
                await asyncio.sleep(1.0)
                self.enqueue(contract_id)
            except Exception:
                log.exception("contract %s: unexpected failure; retrying later", contract_id)
                await asyncio.sleep(1.0)
                self.enqueue(contract_id)
            if self._queue.empty():
                self._idle.set()

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reconcile_interval)
            await self.reconcile()

    async def reconcile(self) -> None:
        """Look at every contract again (repairing what is missing) and remove orphans."""
        for record in self._state.contracts():
            self.enqueue(record.id)
        await self.wait_idle()
        await self.remove_orphans()

    async def remove_orphans(self) -> None:
        """Remove what exists on the machine but no live contract of this node owns."""
        wanted = {w.id for w in self._state.workloads() if w.intent != "absent"}
        for kind in reversed(INSTALL_ORDER):
            primitive = self._primitives.get(kind)
            if primitive is None:
                continue
            try:
                found = await primitive.present()
            except NodeError as exc:
                log.warning("cannot list %s workloads: %s", kind, exc)
                continue
            for orphan in sorted(found - wanted):
                log.info("removing %s %s: no live contract owns it", kind, orphan)
                try:
                    await primitive.deprovision(_ref_of(orphan))
                except (NodeError, ValueError) as exc:
                    log.warning("cannot remove orphan %s %s: %s", kind, orphan, exc)

    async def _retry_reports(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            for contract_id in sorted(self._report_later):
                self._report_later.discard(contract_id)
                await self._report(contract_id)

    async def _report(self, contract_id: int) -> None:
        try:
            await self._reporter.report(contract_id)
        except ChainError:
            self._report_later.add(contract_id)

    # -- one contract --------------------------------------------------------------------------

    async def handle(self, contract_id: int) -> None:
        """Converge the machine on what the ledger says of ``contract_id``."""
        try:
            contract = await self._chain.contract(contract_id)
        except NotFound:
            contract = None
        record = self._state.contract(contract_id)
        if contract is None or contract.get("state") == "deleted":
            if record is not None:
                await self._remove_contract(record)
            return
        if contract.get("type") != "node" or contract.get("node_id") != self.node_id:
            return
        same = (
            record is not None
            and record.version == contract["version"]
            and record.deployment_hash == contract["deployment_hash"]
        )
        if record is None or not same or record.status in ("new", "waiting", "provisioning"):
            record = await self._admit(contract, record)
            if record is None:
                return
        elif record.status == "done":
            await self._repair(record)
        await self._apply_pause(record, paused=contract.get("state") == "grace_period")
        await self._report(contract_id)

    async def _admit(
        self, contract: Mapping[str, Any], record: ContractRecord | None
    ) -> ContractRecord | None:
        """Check a new version of a contract's deployment and provision it."""
        contract_id = int(contract["id"])
        started = time.monotonic()
        old = record
        fresh = ContractRecord(
            id=contract_id,
            twin_id=int(contract["twin_id"]),
            version=int(contract["version"]),
            deployment_hash=str(contract["deployment_hash"]),
        )
        if old is not None:
            fresh.reported_version, fresh.reported_digest = (
                old.reported_version,
                old.reported_digest,
            )
            fresh.used, fresh.paused = old.used, old.paused
        try:
            deployment = unseal_deployment(self._identity, str(contract["sealed_deployment"]))
            check_identity(deployment, contract)
            deployment = with_approvals(deployment, contract.get("approvals", []))
            check_signatures(deployment, await self._signer_keys(deployment))
            previous = self._current_deployment(old)
            if previous is not None and previous.version < deployment.version:
                validate_update(*_ledger_step(previous, deployment))
            check_capacity(
                deployment.capacity(),
                declared=_capacity_of(contract.get("capacity")),
                free=self._free_capacity(excluding=contract_id),
            )
        except AwaitingApproval as exc:
            fresh.status, fresh.message = "waiting", str(exc)
            self._keep_old_workloads(old, fresh)
            return None
        except (ProvisionError, UpdateRefused) as exc:
            self._refuse(old, fresh, str(exc))
            return None
        fresh.deployment = deployment.to_json_dict()
        fresh.status = "provisioning"
        self._write_intent(fresh, deployment)
        await self._converge(fresh, deployment, started)
        return fresh

    async def _signer_keys(self, deployment: Deployment) -> dict[int, bytes]:
        keys: dict[int, bytes] = {}
        for request in deployment.signature_requirement.requests:
            try:
                twin = await self._chain.twin(request.twin_id)
            except NotFound:
                continue  # check_signatures names the missing twin if it signed
            keys[request.twin_id] = public_key_from_address(str(twin["account"]))
        return keys

    def _current_deployment(self, record: ContractRecord | None) -> Deployment | None:
        if record is None or record.deployment is None or record.status == "error":
            return None
        return parse_deployment(record.deployment)

    def _free_capacity(self, *, excluding: int) -> Capacity:
        used = Capacity()
        for record in self._state.contracts():
            if (
                record.id != excluding
                and record.deployment is not None
                and record.status
                in (
                    "provisioning",
                    "done",
                )
            ):
                used += parse_deployment(record.deployment).capacity()
        return self.capacity - used

    def _keep_old_workloads(self, old: ContractRecord | None, fresh: ContractRecord) -> None:
        """A new version that cannot run yet: the old version's workloads stay as they are."""
        if old is not None and old.deployment is not None and old.status == "done":
            # The running version keeps running; the refusal or wait is about the new one.
            old.message = fresh.message
            self._state.put_contract(old)
            self._schedule_report(old.id)
            return
        self._state.put_contract(fresh)
        self._schedule_report(fresh.id)

    def _refuse(self, old: ContractRecord | None, fresh: ContractRecord, message: str) -> None:
        log.info("contract %s version %s refused: %s", fresh.id, fresh.version, message)
        fresh.status, fresh.message = "error", message
        if old is not None and old.deployment is not None and old.status == "done":
            # Keep the running version's workloads; report the refusal of the update.
            fresh.deployment = old.deployment
            fresh.status = "done"
            fresh.message = f"version {fresh.version} refused: {message}"
            fresh.version = old.version
            fresh.deployment_hash = old.deployment_hash
        with self._state.transaction():
            self._state.put_contract(fresh)
            if fresh.status == "error":
                for workload in self._state.workloads(fresh.id):
                    workload.state, workload.message = ResultState.ERROR, message
                    self._state.put_workload(workload)
        self._schedule_report(fresh.id)

    def _schedule_report(self, contract_id: int) -> None:
        self._report_later.add(contract_id)

    def _write_intent(self, record: ContractRecord, deployment: Deployment) -> None:
        """Save what is about to be done before doing any of it."""
        names = {w.name for w in deployment.workloads}
        with self._state.transaction():
            for existing in self._state.workloads(record.id):
                if existing.name not in names:
                    existing.intent = "absent"
                    self._state.put_workload(existing)
            for workload in deployment.workloads:
                current = self._state.workload(record.id, workload.name)
                if current is None or current.type != workload.type:
                    current = WorkloadRecord(
                        contract_id=record.id,
                        name=workload.name,
                        type=str(workload.type),
                        twin_id=record.twin_id,
                    )
                if current.version != workload.version or current.state != ResultState.OK:
                    current.state = ResultState.INIT
                current.version = workload.version
                current.intent = "paused" if record.paused else "present"
                self._state.put_workload(current)
            self._state.put_contract(record)

    async def _converge(
        self, record: ContractRecord, deployment: Deployment, started: float
    ) -> None:
        """Remove what the deployment dropped, then make each workload in type order."""
        removed = [w for w in self._state.workloads(record.id) if w.intent == "absent"]
        for gone in sorted(removed, key=lambda w: -_ORDER[WorkloadType(w.type)]):
            await self._deprovision(gone)
        for workload in _install_order(list(deployment.workloads)):
            await self._provision(record, deployment, workload)
        record.status = "done"
        record.provision_seconds = time.monotonic() - started
        self._state.put_contract(record)

    async def _provision(
        self, record: ContractRecord, deployment: Deployment, workload: Workload
    ) -> None:
        stored = self._state.workload(record.id, workload.name)
        assert stored is not None  # written by _write_intent
        if stored.state == ResultState.OK and stored.version == workload.version:
            return  # done before (a crash after it, or a repeat): nothing to redo
        primitive = self._primitives.get(WorkloadType(workload.type))
        ref = WorkloadRef(record.twin_id, record.id, workload.name)
        item = Provisioning(ref=ref, workload=workload, deployment=deployment)
        if primitive is None:
            stored.state = ResultState.ERROR
            stored.message = f"this node does not run {workload.type} workloads yet"
        else:
            try:
                if (
                    stored.data
                    and isinstance(primitive, Updatable)
                    and workload.type in _DATA_UPDATABLE
                ):
                    data = await primitive.update(item)
                else:
                    data = await primitive.provision(item)
            except ProvisionError as exc:
                stored.state, stored.message = ResultState.ERROR, str(exc)
            except NodeError as exc:
                stored.state, stored.message = ResultState.ERROR, str(exc)
            else:
                stored.state, stored.message, stored.data = ResultState.OK, "", data
                stored.created = stored.created or int(self._clock())
        self._state.put_workload(stored)

    async def _deprovision(self, workload: WorkloadRecord) -> None:
        primitive = self._primitives.get(WorkloadType(workload.type))
        if primitive is not None:
            await primitive.deprovision(
                WorkloadRef(workload.twin_id, workload.contract_id, workload.name)
            )
        self._state.drop_workload(workload.contract_id, workload.name)

    async def _repair(self, record: ContractRecord) -> None:
        """A finished contract: bring back any workload that is no longer really there."""
        if record.deployment is None:
            return
        deployment = parse_deployment(record.deployment)
        for workload in _install_order(list(deployment.workloads)):
            stored = self._state.workload(record.id, workload.name)
            primitive = self._primitives.get(WorkloadType(workload.type))
            if stored is None or primitive is None:
                continue
            if stored.state == ResultState.INIT:
                await self._provision(record, deployment, workload)
                continue
            if not stored.created:
                continue  # it never got made (its result says why); an update may fix it
            # Made once: whatever its last state (a machine that exited is in error), it
            # must exist; after a reboot it does not.
            ref = WorkloadRef(record.twin_id, record.id, workload.name)
            observed = await primitive.inspect(ref)
            if observed.exists and observed.healthy:
                continue
            log.info("restoring %s (%s)", ref.id, observed.detail or "missing")
            stored.state = ResultState.INIT
            self._state.put_workload(stored)
            await self._provision(record, deployment, workload)
            if record.paused and isinstance(primitive, Pausable):
                await primitive.pause(ref)  # restored during the grace period: frozen again
                restored = self._state.workload(record.id, workload.name)
                if restored is not None and restored.state == ResultState.OK:
                    restored.state = ResultState.PAUSED
                    self._state.put_workload(restored)

    async def _apply_pause(self, record: ContractRecord, *, paused: bool) -> None:
        """The grace period freezes workloads (state kept); its end thaws them."""
        if record.paused == paused or record.status != "done":
            return
        for workload in self._state.workloads(record.id):
            primitive = self._primitives.get(WorkloadType(workload.type))
            ref = WorkloadRef(workload.twin_id, workload.contract_id, workload.name)
            if isinstance(primitive, Pausable) and workload.state in (
                ResultState.OK,
                ResultState.PAUSED,
            ):
                if paused:
                    await primitive.pause(ref)
                else:
                    await primitive.resume(ref)
                workload.state = ResultState.PAUSED if paused else ResultState.OK
            workload.intent = "paused" if paused else "present"
            self._state.put_workload(workload)
        record.paused = paused
        self._state.put_contract(record)

    async def _remove_contract(self, record: ContractRecord) -> None:
        """The contract ended: remove every workload, in reverse type order, then forget it."""
        record.status = "deleted"
        self._state.put_contract(record)
        workloads = self._state.workloads(record.id)
        for workload in sorted(workloads, key=lambda w: -_ORDER[WorkloadType(w.type)]):
            await self._deprovision(workload)
        self._state.forget_contract(record.id)
        log.info("contract %s removed", record.id)

    # -- changes the primitives notice ---------------------------------------------------------

    async def workload_changed(
        self, workload_id: str, state: str, message: str, data: Mapping[str, Any]
    ) -> None:
        """A running workload changed by itself (a container exited, was OOM-killed …)."""
        _, contract, name = _split_id(workload_id)
        stored = self._state.workload(contract, name)
        if stored is None or stored.intent == "absent":
            return
        stored.state, stored.message = state, message
        stored.data = {**stored.data, **data}
        self._state.put_workload(stored)
        self._schedule_report(contract)


def _split_id(workload_id: str) -> tuple[int, int, str]:
    twin, contract, name = workload_id.split("-", 2)
    return int(twin), int(contract), name


def _ref_of(workload_id: str) -> WorkloadRef:
    twin, contract, name = _split_id(workload_id)
    return WorkloadRef(twin, contract, name)

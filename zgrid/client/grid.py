"""Grid: the deployer's SDK. Plan, deploy, apply, show, follow logs and destroy deployments
described by spec files, on the network the local store names.

Everything here is a coroutine; :class:`zgrid.client.SyncGrid` is its blocking form,
generated from this class. The CLI is a thin layer over these methods::

    async with Grid.open() as grid:            # $ZGRID_HOME, the current network
        plan = await grid.plan("hello-web.yaml")
        view = await grid.deploy("hello-web.yaml")
        print(view.workload("web").planetary_ip)
        await grid.destroy("hello-web")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import os
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, ValidationError

from zgrid.chain import ChainClient, NotFound
from zgrid.client.builder import item_of
from zgrid.client.changes import CurrentContract, plan_changes
from zgrid.client.deployer import Deployer
from zgrid.client.errors import (
    DeploymentExists,
    DeploymentNotFound,
    InvalidAnswer,
    PlacementError,
)
from zgrid.client.explorer_source import network_explorer
from zgrid.client.flists import resolve_flists
from zgrid.client.mesh import access_config, with_access
from zgrid.client.names import check_names, claim_names, deployed_names, release_names, spec_names
from zgrid.client.offers import NodeOffer, NodeSource, source_of
from zgrid.client.plan import ContractChange, Plan, WorkloadChange
from zgrid.client.planner import place
from zgrid.client.pricing import PriceTerms, contract_price, price_terms, to_tokens
from zgrid.client.records import DeploymentRecord
from zgrid.client.sources import LedgerNodeSource
from zgrid.client.spec.loader import load_spec
from zgrid.client.spec.model import Spec
from zgrid.client.store import NetworkConfig, Store, Unlocker
from zgrid.client.views import DeploymentSummary, DeploymentView, WorkloadView
from zgrid.client.watch import ProgressCallback, open_report
from zgrid.identity import Identity, new_wireguard_key, wireguard_public_key
from zgrid.node import ResultReport, follow_logs
from zgrid.types import NODE_INTERFACE, Network

__all__ = ["DEFAULT_TIMEOUT", "Grid", "SpecSource"]

DEFAULT_TIMEOUT = 600.0  # seconds nodes get to settle a deploy before it is rolled back
SpecSource = Spec | Path | str  # a Spec, or the path of a spec file
_LOG_CONNECT_TIMEOUT = 3.0
_PLANETARY = ipaddress.IPv6Network("200::/7")


class Grid:
    """One identity on one network. Build it with :meth:`open` (or pass its parts).

    Nodes are read from the network's explorer when it configures one, else from its
    ledger; ``source`` replaces either.
    """

    store: Store
    network: NetworkConfig
    identity: Identity
    chain: ChainClient
    source: NodeSource
    timeout: float

    def __init__(
        self,
        *,
        store: Store,
        network: NetworkConfig,
        identity: Identity,
        source: NodeSource | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.store = store
        self.network = network
        self.identity = identity
        self.timeout = timeout
        self.chain = ChainClient(network.ledger, identity=identity)
        self.source = (
            source
            or network_explorer(network, ledger_height=self._ledger_height)
            or LedgerNodeSource(self.chain)
        )
        self._twin_id: int | None = None

    @classmethod
    def open(
        cls,
        home: Path | str | None = None,
        *,
        network: str | None = None,
        unlocker: Unlocker | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Grid:
        """The grid of ``network`` (default: the store's current one) as its identity.

        ``home`` defaults to $ZGRID_HOME or ~/.zgrid; the store is unlocked with
        ``unlocker`` (default: $ZGRID_PASSPHRASE or $ZGRID_KEY_FILE).
        """
        root = Path(home or os.environ.get("ZGRID_HOME") or "~/.zgrid").expanduser()
        store = Store(root, unlocker=unlocker or Unlocker.from_env(os.environ))
        return cls.from_store(store, network=network, timeout=timeout)

    @classmethod
    def from_store(
        cls, store: Store, *, network: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Grid:
        """The grid of ``network`` in an open store, as that network's identity."""
        config = store.network(network)
        return cls(
            store=store, network=config, identity=store.identity(config.identity), timeout=timeout
        )

    async def __aenter__(self) -> Grid:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.chain.close()

    async def _ledger_height(self) -> int:
        return int((await self.chain.head())["height"])

    # -- identity ------------------------------------------------------------------------------

    async def twin_id(self, *, create: bool = False) -> int:
        """This identity's twin on the ledger (0 when it has none); ``create`` makes one."""
        if self._twin_id is None:
            twin = await self.chain.twin_of(self.identity.address)
            if twin is not None:
                self._twin_id = int(twin["id"])
            elif create:
                self._twin_id = await self.chain.create_twin()
        return self._twin_id or 0

    # -- plan ----------------------------------------------------------------------------------

    async def plan(self, spec: SpecSource) -> Plan:
        """What deploying or applying ``spec`` would do, and its price; nothing is signed or
        sent (the record only forgets contracts the ledger has ended)."""
        checked = _spec(spec)
        record = self._record(checked.name)
        current = {} if record is None else await self._current(record)
        twin_id = await self.twin_id()
        offers = await self.source.offers()
        keys = {
            item_of(w) or w.name: node_id
            for node_id, contract in current.items()
            for w in contract.deployment.workloads
        }
        if twin_id:
            await check_names(self.chain, spec_names(checked), twin_id)
        assignment = place(checked, offers, current=keys, twin_id=twin_id)
        flists = await resolve_flists(checked, hub=self.network.hub)
        # Without a twin yet (deploy makes one first), plan as twin 1: such a plan is only
        # shown, never signed.
        endpoints = {}
        if checked.network is not None:
            endpoints = {node: await self._endpoint(node) for node in set(assignment.values())}
        access = None
        if record is not None and record.access_key:
            access = wireguard_public_key(record.access_key)
        changes = plan_changes(
            checked,
            assignment,
            twin_id=twin_id or 1,
            flists=flists,
            current=current,
            endpoints=endpoints,
            access=access,
        )
        return self._priced(checked.name, changes, offers, await price_terms(self.chain))

    async def network_access(
        self,
        name: str,
        *,
        on_progress: ProgressCallback | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> str:
        """A wg-quick configuration that makes this machine a peer of deployment ``name``'s
        private network; the first time, every node's part is updated to take it (later
        applies keep it). Its key never leaves this machine's store."""
        record = self._record(name)
        if record is None:
            raise DeploymentNotFound(f"no deployment {name!r} on network {self.network.name}")
        current = await self._current(record)
        parts: dict[int, tuple[Network, str]] = {}  # node -> its part and that part's key
        for node, contract in current.items():
            for workload in contract.deployment.workloads:
                key = item_of(workload)
                if isinstance(workload.data, Network) and key is not None:
                    parts[node] = (workload.data, key)
        if not parts:
            raise DeploymentNotFound(f"deployment {name!r} has no private network")
        if record.busy:
            raise DeploymentExists(_busy(record))
        if not record.access_key:
            record.access_key = new_wireguard_key()
            self._save(record)
        public = wireguard_public_key(record.access_key)
        changes = []
        for node, (_, key) in sorted(parts.items()):
            running = current[node].deployment
            grown = with_access(running, key, public)
            if grown is None:
                continue  # it has the peer already
            name_on_node = next(w.name for w in grown.workloads if item_of(w) == key)
            move = WorkloadChange(key, name_on_node, "network", "update", "this machine as a peer")
            changes.append(
                ContractChange("update", node, current[node].contract_id, grown, running, (move,))
            )
        if changes:
            if on_step is not None:
                on_step(f"adding this machine as a peer on {len(changes)} node(s)")
            offers = await self.source.offers()
            plan = self._priced(name, tuple(changes), offers, await price_terms(self.chain))
            await self._deployer(record.twin_id, on_progress, on_step).execute(plan, record)
        endpoints = {node: await self._endpoint(node) for node in parts}
        for node, host in endpoints.items():
            if not host:
                raise PlacementError(
                    parts[node][1], [f"node {node} registered no address to reach it at"]
                )
        return access_config(
            record.access_key,
            {node: (network, endpoints[node]) for node, (network, _) in parts.items()},
        )

    async def _endpoint(self, node_id: int) -> str:
        """Where the node's peers reach it: the first address it registered (an IPv4
        before an IPv6; planetary addresses are not for WireGuard), or "" with none."""
        record = await self.chain.node(node_id)
        found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for interface in record.get("interfaces") or []:
            if isinstance(interface, dict) and interface.get("name") == NODE_INTERFACE:
                for text in interface.get("ips") or []:
                    with contextlib.suppress(ValueError):
                        address = ipaddress.ip_address(str(text))
                        if address not in _PLANETARY:
                            found.append(address)
        found.sort(key=lambda address: address.version)
        return str(found[0]) if found else ""

    def _priced(
        self,
        name: str,
        changes: tuple[ContractChange, ...],
        offers: list[NodeOffer],
        terms: PriceTerms,
    ) -> Plan:
        by_node = {offer.node_id: offer for offer in offers}
        priced: list[ContractChange] = []
        total = Fraction(0)
        for change in changes:
            price = Fraction(0)
            offer = by_node.get(change.node_id)
            if change.deployment is not None and change.action != "cancel" and offer is not None:
                price = contract_price(
                    change.deployment.capacity(),
                    public_ips=change.public_ips,
                    policy=terms.policy(offer.pricing_policy_id),
                    certified=offer.certified,
                )
            total += price
            priced.append(dataclasses.replace(change, price=price))
        nodes_from, nodes_url = source_of(self.source)
        return Plan(
            name=name,
            network=self.network.name,
            changes=tuple(priced),
            price_usd=total,
            price_tokens=to_tokens(total, terms.token_price),
            token_price=terms.token_price,
            nodes_from=nodes_from,
            nodes_url=nodes_url,
        )

    # -- deploy, apply -------------------------------------------------------------------------

    async def deploy(
        self,
        spec: SpecSource,
        *,
        on_progress: ProgressCallback | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> DeploymentView:
        """Create everything ``spec`` describes; all of it runs, or none of it is left."""
        checked = _spec(spec)
        record = self._record(checked.name)
        if record is not None and not record.interrupted:
            raise DeploymentExists(
                f"{checked.name} is already deployed on {self.network.name} "
                f"(contracts {_ids(record)}): change it with `zgrid apply`, "
                f"remove it with `zgrid destroy {checked.name}`"
            )
        # What an interrupted run left is taken over by apply: kept where it matches the
        # spec, changed or cancelled where it does not.
        await self.twin_id(create=True)
        return await self.apply(checked, on_progress=on_progress, on_step=on_step)

    async def apply(
        self,
        spec: SpecSource,
        *,
        plan: Plan | None = None,
        on_progress: ProgressCallback | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> DeploymentView:
        """Make what runs match ``spec``, touching only what changed (``plan``: the one the
        user saw; it is computed again when not given)."""
        checked = _spec(spec)
        twin_id = await self.twin_id(create=True)
        record = self._record(checked.name)
        deployer = self._deployer(twin_id, on_progress, on_step)
        if record is None:
            record = DeploymentRecord(
                name=checked.name, network=self.network.name, twin_id=twin_id, status="deploying"
            )
        elif record.busy:
            raise DeploymentExists(_busy(record))
        elif record.interrupted:
            await self._recover(record, deployer)
            plan = None  # the plan shown was made against what the record said ran
        if plan is None or any(
            c.deployment is not None and c.deployment.twin_id != twin_id for c in plan.changes
        ):
            plan = await self.plan(checked)  # none given, or made before the twin existed
        if on_step is not None:
            on_step(f"planned with {plan.nodes_text}")
        wanted = spec_names(checked)
        before = deployed_names(c.previous for c in plan.changes if c.previous is not None)
        made = await claim_names(self.chain, wanted, twin_id)
        if made and on_step is not None:
            on_step(
                f"claimed gateway name(s) {', '.join(wanted)} (name contracts {', '.join(map(str, made))})"
            )
        try:
            await deployer.execute(plan, record)
        except BaseException:
            with contextlib.suppress(Exception):  # the failure is what the caller hears of
                await release_names(self.chain, set(wanted) - before, twin_id)
            raise
        await release_names(self.chain, before - set(wanted), twin_id)
        return await self.show(checked.name)

    def _deployer(
        self,
        twin_id: int,
        on_progress: ProgressCallback | None,
        on_step: Callable[[str], None] | None,
    ) -> Deployer:
        return Deployer(
            chain=self.chain,
            identity=self.identity,
            twin_id=twin_id,
            save=self._save,
            drop=self._drop,
            timeout=self.timeout,
            on_progress=on_progress,
            on_step=on_step,
        )

    async def _recover(self, record: DeploymentRecord, deployer: Deployer) -> None:
        """Take over what an interrupted run left: what reached the ledger is what runs (a
        creation or update it sent, found by hash), any other contract it made is cancelled."""
        live = await deployer.live_contracts()
        by_hash = {str(c["deployment_hash"]): c for c in live}
        for entry in record.contracts:
            landed = by_hash.get(entry.pending_hash) if entry.pending_hash else None
            if landed is not None and entry.pending is not None:
                entry.contract_id = int(landed["id"])
                # What runs is what the node made of it: the new version if it reported
                # it, else (refused, or not read yet) the one before, or nothing.
                report = self._report(await self.chain.contract(entry.contract_id))
                if report is not None and report.version == int(entry.pending["version"]):
                    entry.deployment = entry.pending
            entry.pending, entry.pending_hash = None, ""
        record.contracts = [e for e in record.contracts if e.deployment and e.contract_id]
        kept = {e.contract_id for e in record.contracts}
        hashes = set(record.hashes)
        stray = [
            int(c["id"])
            for c in live
            if str(c["deployment_hash"]) in hashes and int(c["id"]) not in kept
        ]
        problems = await deployer.cancel(stray) if stray else {}
        if problems:
            raise DeploymentExists(
                f"{record.name}: what an interrupted run left cannot be cleaned: "
                + "; ".join(problems.values())
            )
        record.status = "deployed"
        self._save(record)

    # -- read ----------------------------------------------------------------------------------

    async def deployments(self) -> list[DeploymentSummary]:
        """Every deployment this store made on this network."""
        summaries = []
        for document in self.store.records(self.network.name):
            record = DeploymentRecord.model_validate(document)
            running = [entry.running() for entry in record.contracts]
            workloads = sum(len(d.workloads) for d in running if d is not None)
            summaries.append(
                DeploymentSummary(
                    name=record.name,
                    network=record.network,
                    status=record.shown_status(),
                    contracts=record.contract_ids(),
                    nodes=sorted({entry.node_id for entry in record.contracts}),
                    workloads=workloads,
                )
            )
        return sorted(summaries, key=lambda s: s.name)

    async def show(self, name: str) -> DeploymentView:
        """Each workload of ``name`` as its node reports it: state, node, addresses, error."""
        record = self._need(name)
        contracts: list[dict[str, Any]] = []
        workloads: list[WorkloadView] = []
        for entry in record.contracts:
            running = entry.running()
            state, report = "unknown", None
            if entry.contract_id:
                with contextlib.suppress(NotFound):
                    contract = await self.chain.contract(entry.contract_id)
                    state = str(contract.get("state", "unknown"))
                    report = self._report(contract)
            contracts.append(
                {
                    "id": entry.contract_id,
                    "node_id": entry.node_id,
                    "state": state,
                    "version": None if running is None else running.version,
                }
            )
            if running is None:
                continue
            for workload in running.workloads:
                found = None
                if report is not None and report.version == running.version:
                    found = report.workload(workload.name)
                data = dict(found.result.data) if found is not None else {}
                workloads.append(
                    WorkloadView(
                        key=item_of(workload) or workload.name,
                        name=workload.name,
                        type=str(workload.type),
                        node_id=entry.node_id,
                        contract_id=entry.contract_id,
                        version=workload.version,
                        state="deleted"
                        if state == "deleted"
                        else (str(found.result.state) if found is not None else "unknown"),
                        message="" if found is None else found.result.message,
                        planetary_ip=str(data.get("planetary_ip", "")),
                        data=_without_secrets(data),
                    )
                )
        return DeploymentView(
            name=record.name,
            network=record.network,
            status=record.shown_status(),
            contracts=contracts,
            workloads=workloads,
        )

    async def logs(self, name: str, machine: str, *, follow: bool = False) -> AsyncIterator[bytes]:
        """A machine's output through its node's log channel; with ``follow``, until stopped.

        ``machine`` is the workload's name (`zgrid show` lists them) or, for a machine with
        one replica, its name in the spec.
        """
        access = await self._log_access(name, machine)
        host = await _reachable([str(ip) for ip in access.ips], access.port)
        async for chunk in follow_logs(
            host, access.port, access.namespace, access.password, follow=follow
        ):
            yield chunk

    async def _log_access(self, name: str, machine: str) -> LogAccess:
        record = self._need(name)
        candidates: list[tuple[str, int]] = []  # workload name, contract
        for entry in record.contracts:
            running = entry.running()
            if running is None:
                continue
            for workload in running.workloads:
                if str(workload.type) != "zmachine":
                    continue
                key = item_of(workload) or ""
                if workload.name == machine or key.split("/")[1:2] == [machine]:
                    candidates.append((workload.name, entry.contract_id))
        names = {candidate[0] for candidate in candidates}
        if not candidates:
            raise DeploymentNotFound(f"{name} has no machine {machine!r} (see `zgrid show {name}`)")
        if len(names) > 1:
            raise DeploymentNotFound(f"{name}/{machine} is ambiguous: {', '.join(sorted(names))}")
        workload_name, contract_id = candidates[0]
        report = self._report(await self.chain.contract(contract_id))
        found = None if report is None else report.workload(workload_name)
        access = None if found is None else found.result.data.get("logs")
        if not isinstance(access, dict) or not access.get("ips"):
            state = "no report yet" if found is None else f"{found.result.state}"
            raise DeploymentNotFound(
                f"{name}/{machine} has no log channel yet (its node reports: {state})"
            )
        try:
            return LogAccess.model_validate(access)
        except ValidationError as exc:
            raise InvalidAnswer(
                f"the node's log channel of {name}/{machine} is not usable: "
                f"{exc.errors()[0]['msg']}"
            ) from exc

    # -- destroy -------------------------------------------------------------------------------

    async def destroy(
        self, name: str, *, on_step: Callable[[str], None] | None = None
    ) -> list[int]:
        """Cancel every contract of ``name`` (also those an interrupted run left); their ids."""
        return await self._destroy(self._need(name), on_step)

    async def _destroy(
        self, record: DeploymentRecord, on_step: Callable[[str], None] | None
    ) -> list[int]:
        twin_id = await self.twin_id()
        if twin_id != record.twin_id:
            raise DeploymentExists(
                f"{record.name} belongs to twin {record.twin_id}, but network "
                f"{self.network.name} signs as {twin_id or 'no twin'} (identity "
                f"{self.network.identity!r}): use the identity that made it"
            )
        if record.busy:
            raise DeploymentExists(_busy(record))
        record.claim("destroying")
        self._save(record)
        deployer = self._deployer(twin_id, None, on_step)
        names = deployed_names(c.deployment for c in (await self._current(record)).values())
        found = await deployer.find_contracts(record)
        if on_step is not None:
            on_step(f"cancelling contract(s) {', '.join(map(str, found)) or 'none left'}")
        problems = await deployer.cancel(found)
        for contract_id in record.contract_ids():
            if contract_id not in problems and not await deployer.ended(contract_id):
                problems[contract_id] = f"contract {contract_id} is still live"
        if problems:
            self._save(record)
            raise DeploymentExists(
                f"{record.name} is not fully destroyed: " + "; ".join(problems.values())
            )
        await release_names(self.chain, names, twin_id)
        self.store.drop_record(self.network.name, record.name)
        return found

    # -- helpers -------------------------------------------------------------------------------

    def _record(self, name: str) -> DeploymentRecord | None:
        document = self.store.record(self.network.name, name)
        return None if document is None else DeploymentRecord.model_validate(document)

    def _need(self, name: str) -> DeploymentRecord:
        record = self._record(name)
        if record is None:
            raise DeploymentNotFound(
                f"no deployment {name!r} on network {self.network.name} (`zgrid ls` lists them)"
            )
        return record

    def _drop(self, record: DeploymentRecord) -> None:
        self.store.drop_record(self.network.name, record.name)

    def _save(self, record: DeploymentRecord) -> None:
        self.store.put_record(self.network.name, record.name, record.model_dump(mode="json"))

    async def _current(self, record: DeploymentRecord) -> dict[int, CurrentContract]:
        """What runs now per node; contracts the ledger ended are dropped from the record."""
        current: dict[int, CurrentContract] = {}
        live = []
        for entry in record.contracts:
            running = entry.running()
            if running is None or not entry.contract_id:
                continue
            try:
                contract = await self.chain.contract(entry.contract_id)
            except NotFound:
                continue
            if contract.get("state") == "deleted":
                continue
            live.append(entry)
            ledger_version = int(contract.get("version", running.version))
            if ledger_version > running.version:
                # The ledger counted an update the node refused (or this client never saw
                # settle): what runs is older, the next version is the ledger's + 1.
                running = running.model_copy(update={"version": ledger_version})
            current[entry.node_id] = CurrentContract(entry.contract_id, running)
        if len(live) != len(record.contracts) and record.status == "deployed":
            record.contracts = live
            self._save(record)
        return current

    def _report(self, contract: dict[str, Any]) -> ResultReport | None:
        return open_report(self.identity, contract)


class LogAccess(BaseModel):
    """Where a machine's log channel is, as its node reports it (bounded: it is the node's
    word, and the client connects where it says)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ips: list[IPvAnyAddress] = Field(min_length=1, max_length=8)
    port: int = Field(ge=1, le=65535)
    namespace: str = Field(min_length=1, max_length=128)
    password: str = Field(max_length=128)


def _spec(spec: SpecSource) -> Spec:
    return spec if isinstance(spec, Spec) else load_spec(Path(spec))


def _busy(record: DeploymentRecord) -> str:
    return (
        f"{record.name} is being changed by process {record.pid} on {record.host}: "
        "wait for it, or stop it (Ctrl-C rolls it back)"
    )


def _ids(record: DeploymentRecord) -> str:
    return ", ".join(map(str, record.contract_ids())) or "none yet"


def _without_secrets(data: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in data.items():
        if key == "password":
            continue
        shown[key] = _without_secrets(value) if isinstance(value, dict) else value
    return shown


async def _reachable(ips: list[str], port: int) -> str:
    """The first of a node's addresses this machine can open a connection to."""
    tried = []
    for ip in ips:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(ip, port), _LOG_CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            tried.append(f"{ip} ({exc or type(exc).__name__})")
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return ip
    raise DeploymentNotFound(
        f"the node's log channel cannot be reached on port {port}: " + ", ".join(tried)
    )

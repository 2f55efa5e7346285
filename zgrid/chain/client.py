"""ChainClient: sign and submit transactions, wait for inclusion, read state, follow events.

The async :class:`ChainClient` is the implementation; :class:`SyncChainClient`
is generated from it (every coroutine method run on a private event loop), so
scripts and the CLI use the very same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import stamina
from httpx_sse import EventSource, SSEError, aconnect_sse

from zgrid.chain.errors import LedgerUnavailable, NotFound, RejectCode, TransactionRejected
from zgrid.chain.records import ChainEvent
from zgrid.chain.transaction import SignedTransaction, sign_transaction
from zgrid.identity import Identity

__all__ = ["ChainClient", "SubmitResult"]

log = logging.getLogger(__name__)

# The ledger sends a keep-alive every 15 s; a stream silent for longer is dead.
_STREAM_SILENCE = 45.0

SubmitResult = dict[str, Any]


class ChainClient:
    """Talks to one ledger over HTTP. ``identity`` signs; without it the client only reads."""

    url: str
    identity: Identity | None

    def __init__(
        self,
        url: str,
        *,
        identity: Identity | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.identity = identity
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)
        self._chain_id: str | None = None
        self._nonce: int | None = None
        self._nonce_lock = asyncio.Lock()

    async def __aenter__(self) -> ChainClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # -- plumbing ------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LedgerUnavailable(
                f"cannot reach the ledger at {self.url}: {exc or type(exc).__name__}"
            ) from exc
        try:
            document = response.json()
        except ValueError as exc:
            raise LedgerUnavailable(
                f"the ledger at {self.url} answered {response.status_code} without JSON"
            ) from exc
        if response.status_code < 400:
            return document
        error = document.get("error", {}) if isinstance(document, dict) else {}
        code, message = error.get("code", "error"), error.get("message", response.text)
        if response.status_code == 404:
            raise NotFound(message)
        if response.status_code == 400 and code in RejectCode.__members__.values():
            raise TransactionRejected(RejectCode(code), message)
        raise LedgerUnavailable(f"the ledger answered {response.status_code}: {message}")

    def _signer(self) -> Identity:
        if self.identity is None:
            raise LedgerUnavailable("this client has no identity to sign with")
        return self.identity

    # -- chain ---------------------------------------------------------------------------------

    async def head(self) -> dict[str, Any]:
        head: dict[str, Any] = await self._request("GET", "/chain/head")
        self._chain_id = head["chain_id"]
        return head

    async def chain_id(self) -> str:
        if self._chain_id is None:
            await self.head()
        assert self._chain_id is not None
        return self._chain_id

    async def genesis(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", "/genesis")
        return result

    async def block(self, height: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", f"/blocks/{height}")
        return result

    async def headers(self, start: int, limit: int = 100) -> list[dict[str, Any]]:
        """The signed headers of blocks ``start``, ``start + 1`` … (at most ``limit``)."""
        result: list[dict[str, Any]] = await self._request(
            "GET", "/blocks", params={"start": start, "limit": limit}
        )
        return result

    async def event_page(self, after: str = "0--1", limit: int = 1000) -> list[ChainEvent]:
        """Committed events after the position ``after`` (``<height>-<index>``), in order."""
        found = await self._request("GET", "/events", params={"after": after, "limit": limit})
        return [ChainEvent.model_validate(event) for event in found]

    async def transaction(self, tx_hash: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", f"/transactions/{tx_hash}")
        return result

    # -- transactions --------------------------------------------------------------------------

    async def sign(self, call: str, args: dict[str, Any]) -> SignedTransaction:
        """Sign ``call`` with the next nonce this client has not used yet."""
        identity = self._signer()
        chain_id = await self.chain_id()
        async with self._nonce_lock:
            if self._nonce is None:
                self._nonce = (await self.account(identity.address))["nonce"]
            nonce = self._nonce
            self._nonce += 1
        return sign_transaction(identity, chain_id=chain_id, nonce=nonce, call=call, args=args)

    async def submit(
        self,
        call: str,
        args: dict[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> SubmitResult:
        """Sign and submit; with ``wait`` return once it is in a committed block.

        A refusal raises TransactionRejected with the ledger's reason. After a
        refusal or a lost answer the next nonce is read from the ledger again.
        """
        tx = await self.sign(call, args or {})
        try:
            return await self.submit_signed(tx, wait=wait, timeout=timeout)
        except BaseException:
            # Refused, cut short, or unknown whether it arrived: ask the ledger for the next
            # nonce again.
            self.forget_nonce()
            raise

    def forget_nonce(self) -> None:
        """The next signed call reads its nonce from the ledger again (after a transaction
        this client signed may not have arrived)."""
        self._nonce = None

    async def submit_signed(
        self, tx: SignedTransaction, *, wait: bool = True, timeout: float = 30.0
    ) -> SubmitResult:
        params = {"wait": "true", "timeout": str(timeout)} if wait else {}
        result: SubmitResult = await self._request(
            "POST", "/transactions", json=tx.to_json(), params=params, timeout=timeout + 10
        )
        if wait and result.get("status") != "included":
            raise LedgerUnavailable(f"transaction {tx.hash} was not included within {timeout} s")
        return result

    async def submit_batch(self, transactions: list[SignedTransaction]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._request(
            "POST", "/transactions/batch", json=[tx.to_json() for tx in transactions]
        )
        return result

    async def wait_included(
        self, tx_hash: str, *, timeout: float = 30.0, poll: float = 0.05
    ) -> dict[str, Any]:
        """Poll until ``tx_hash`` is in a committed block; LedgerUnavailable after ``timeout``.

        A plain poll (``poll`` seconds at first, doubling up to a second): waiting for a
        block is not a failure to retry, and says nothing until the time is up.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = poll
        while True:
            status = await self.transaction(tx_hash)
            if status["status"] == "included":
                return status
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LedgerUnavailable(
                    f"transaction {tx_hash} was not included within {timeout} s"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, max(poll, 1.0))

    # -- calls, by domain ----------------------------------------------------------------------

    async def transfer(self, to: str, amount: int) -> SubmitResult:
        return await self.submit("accounts.transfer", {"to": to, "amount": amount})

    async def faucet(self, amount: int) -> SubmitResult:
        return await self.submit("accounts.faucet", {"amount": amount})

    async def create_twin(self, relay: str = "") -> int:
        result = await self.submit("twins.create", {"relay": relay})
        return int(result["result"]["twin_id"])

    async def create_farm(self, name: str, pricing_policy_id: int = 1) -> int:
        result = await self.submit(
            "farms.create", {"name": name, "pricing_policy_id": pricing_policy_id}
        )
        return int(result["result"]["farm_id"])

    async def add_farm_ip(self, farm_id: int, ip: str, gateway: str) -> SubmitResult:
        return await self.submit("farms.add_ip", {"farm_id": farm_id, "ip": ip, "gateway": gateway})

    async def register_node(self, farm_id: int, resources: dict[str, int], **fields: Any) -> int:
        result = await self.submit(
            "nodes.register", {"farm_id": farm_id, "resources": resources, **fields}
        )
        return int(result["result"]["node_id"])

    async def update_node(
        self, farm_id: int, resources: dict[str, int], **fields: Any
    ) -> SubmitResult:
        """Replace the signer node's record (``join_token`` needed only to change farm)."""
        return await self.submit(
            "nodes.update", {"farm_id": farm_id, "resources": resources, **fields}
        )

    async def report_uptime(self, uptime: int, timestamp: int) -> SubmitResult:
        return await self.submit("nodes.report_uptime", {"uptime": uptime, "timestamp": timestamp})

    async def create_node_contract(
        self,
        node_id: int,
        deployment_hash: str,
        sealed_deployment: str,
        public_ips: int = 0,
        *,
        approvers: list[int] | None = None,
        capacity: dict[str, int] | None = None,
    ) -> SubmitResult:
        """``approvers``: the twins of the deployment's signature requirement, the only
        ones the ledger lets approve it. ``capacity``: what the contract reserves on the
        node (``cru``, ``mru``, ``sru``, ``hru``; a key left out is 0); the ledger refuses
        it unless it fits the node's free capacity."""
        args: dict[str, Any] = {
            "node_id": node_id,
            "deployment_hash": deployment_hash,
            "sealed_deployment": sealed_deployment,
            "public_ips": public_ips,
            "approvers": approvers or [],
        }
        if capacity is not None:
            args["capacity"] = capacity
        return await self.submit("contracts.create_node_contract", args)

    async def update_node_contract(
        self,
        contract_id: int,
        deployment_hash: str,
        sealed_deployment: str,
        *,
        approvers: list[int] | None = None,
        capacity: dict[str, int] | None = None,
    ) -> SubmitResult:
        """``approvers`` and ``capacity`` left out keep what the contract had; a new
        capacity must fit what is free on the node plus what the contract held."""
        args: dict[str, Any] = {
            "contract_id": contract_id,
            "deployment_hash": deployment_hash,
            "sealed_deployment": sealed_deployment,
        }
        if approvers is not None:
            args["approvers"] = approvers
        if capacity is not None:
            args["capacity"] = capacity
        return await self.submit("contracts.update_node_contract", args)

    async def create_name_contract(self, name: str) -> SubmitResult:
        """Claim ``name`` (a gateway's name under a gateway node's domain) for the signer."""
        return await self.submit("contracts.create_name_contract", {"name": name})

    async def name_contract(self, name: str) -> dict[str, Any] | None:
        """The live name contract holding ``name``, or None when it is free."""
        found = await self.query("contracts", type="name", name=name)
        items: list[dict[str, Any]] = found["items"]
        return items[0] if items else None

    async def cancel_contract(self, contract_id: int) -> SubmitResult:
        return await self.submit("contracts.cancel", {"contract_id": contract_id})

    async def advance_time(self, seconds: int) -> SubmitResult:
        """Move ledger time ``seconds`` ahead, from the next block on (dev chains only: a
        chain without a faucet refuses it)."""
        return await self.submit("dev.advance_time", {"seconds": seconds})

    async def report_result(
        self, contract_id: int, version: int, sealed_results: str
    ) -> SubmitResult:
        """The node's results of ``version`` of a contract, sealed to its deployer (base64)."""
        return await self.submit(
            "contracts.report_result",
            {"contract_id": contract_id, "version": version, "sealed_results": sealed_results},
        )

    async def report_resources(self, contract_id: int, used: dict[str, int]) -> SubmitResult:
        """What a contract uses on the signer node now; at most what the contract declared."""
        return await self.submit(
            "contracts.report_resources", {"contract_id": contract_id, "used": used}
        )

    # -- state ---------------------------------------------------------------------------------

    async def account(self, address: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", f"/accounts/{address}")
        return result

    async def _entity(self, kind: str, entity_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", f"/{kind}/{entity_id}")
        return result

    async def twin(self, twin_id: int) -> dict[str, Any]:
        return await self._entity("twins", twin_id)

    async def twin_of(self, address: str) -> dict[str, Any] | None:
        found = await self._request("GET", "/twins", params={"account": address})
        items: list[dict[str, Any]] = found["items"]
        return items[0] if items else None

    async def farm(self, farm_id: int) -> dict[str, Any]:
        return await self._entity("farms", farm_id)

    async def node(self, node_id: int) -> dict[str, Any]:
        return await self._entity("nodes", node_id)

    async def contract(self, contract_id: int) -> dict[str, Any]:
        return await self._entity("contracts", contract_id)

    async def economy(self) -> dict[str, Any]:
        """The token price in force, who sets it, the supply and the economy's periods."""
        result: dict[str, Any] = await self._request("GET", "/economy")
        return result

    async def bills(self, contract_id: int, page: int = 1, size: int = 50) -> dict[str, Any]:
        """A page of a contract's bills, oldest first (``total``: all its bills)."""
        result: dict[str, Any] = await self._request(
            "GET", f"/contracts/{contract_id}/bills", params={"page": page, "size": size}
        )
        return result

    async def discount(self, twin_id: int) -> dict[str, Any]:
        """A twin's staking discount: its balance, spend rate, months covered and tiers."""
        result: dict[str, Any] = await self._request("GET", f"/twins/{twin_id}/discount")
        return result

    async def farm_rewards(
        self, farm_id: int, node_id: int | None = None, page: int = 1, size: int = 50
    ) -> dict[str, Any]:
        """A page of a farm's farming rewards (of one node with ``node_id``), oldest first."""
        params: dict[str, Any] = {"page": page, "size": size}
        if node_id is not None:
            params["node_id"] = node_id
        result: dict[str, Any] = await self._request(
            "GET", f"/farms/{farm_id}/rewards", params=params
        )
        return result

    async def query(self, kind: str, **filters: Any) -> dict[str, Any]:
        """A page of twins, farms, nodes or contracts: ``query("nodes", farm_id=1, status="up")``."""
        params = {
            key: str(value).lower() if isinstance(value, bool) else value
            for key, value in filters.items()
            if value is not None
        }
        result: dict[str, Any] = await self._request("GET", f"/{kind}", params=params)
        return result

    # -- events --------------------------------------------------------------------------------

    async def events(
        self,
        from_height: int = 0,
        *,
        reconnect_delay: float = 0.5,
        give_up_after: float | None = 60.0,
    ) -> AsyncIterator[ChainEvent]:
        """Every event from ``from_height`` on, in order; reconnects where it left off.

        A broken stream is logged and reconnected (resuming after the last event
        seen, through ``Last-Event-ID``). When the ledger cannot be reached again for
        ``give_up_after`` seconds this raises LedgerUnavailable; ``None`` follows forever.
        """
        last_id: str | None = None
        while True:
            async with contextlib.AsyncExitStack() as stack:
                source = await self._connect_events(
                    stack, from_height, last_id, reconnect_delay, give_up_after
                )
                try:
                    async for message in source.aiter_sse():
                        last_id = message.id or last_id
                        if message.event == "event":
                            yield ChainEvent.model_validate_json(message.data)
                    reason = "the ledger ended the stream"
                except (httpx.HTTPError, SSEError) as exc:
                    reason = f"the stream broke ({exc or type(exc).__name__})"
            log.warning(
                "event stream from %s: %s; reconnecting after %s",
                self.url,
                reason,
                last_id or f"height {from_height}",
            )
            await asyncio.sleep(reconnect_delay)

    async def _connect_events(
        self,
        stack: contextlib.AsyncExitStack,
        from_height: int,
        last_id: str | None,
        reconnect_delay: float,
        give_up_after: float | None,
    ) -> EventSource:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        params = {} if last_id else {"from_height": from_height}
        try:
            async for attempt in stamina.retry_context(
                on=_StreamUnavailable,
                attempts=None,
                timeout=give_up_after,
                wait_initial=reconnect_delay,
                wait_max=max(reconnect_delay, 5.0),
            ):
                with attempt:
                    return await self._open_events(stack, params, headers)
        except _StreamUnavailable as exc:
            raise LedgerUnavailable(
                f"the event stream at {self.url} could not be reached for {give_up_after} s: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _open_events(
        self,
        stack: contextlib.AsyncExitStack,
        params: dict[str, Any],
        headers: dict[str, str],
    ) -> EventSource:
        try:
            source = await stack.enter_async_context(
                aconnect_sse(
                    self._http,
                    "GET",
                    "/events/stream",
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(_STREAM_SILENCE, connect=10),
                )
            )
        except httpx.HTTPError as exc:
            raise _StreamUnavailable(str(exc) or type(exc).__name__) from exc
        response = source.response
        if 400 <= response.status_code < 500:
            await response.aread()
            raise LedgerUnavailable(
                f"the event stream refused the request ({response.status_code}): {response.text}"
            )
        if response.status_code != 200:
            raise _StreamUnavailable(f"the ledger answered {response.status_code}")
        return source


class _StreamUnavailable(Exception):
    """The event stream cannot be opened right now (retried for a bounded time)."""

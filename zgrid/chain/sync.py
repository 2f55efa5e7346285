"""SyncChainClient: the blocking form of ChainClient, a thin typed layer over it.

Every method runs the :class:`ChainClient` coroutine of the same name on a
private event loop thread (anyio's blocking portal) and returns its result; the
event stream becomes a plain iterator. Nothing is implemented twice: each method
is one line, type-checked against the coroutine it calls, and a test checks that
each coroutine of ChainClient has its blocking twin with the same parameters.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

import anyio
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from zgrid.chain.client import ChainClient, SubmitResult
from zgrid.chain.records import ChainEvent
from zgrid.chain.transaction import SignedTransaction
from zgrid.identity import Identity

__all__ = ["SyncChainClient"]

_CLOSE_TIMEOUT = 5.0  # seconds closing the HTTP client may take

P = ParamSpec("P")
T = TypeVar("T")


class SyncChainClient:
    """``SyncChainClient(url, identity=...)``: ChainClient's methods, blocking."""

    def __init__(
        self,
        url: str,
        *,
        identity: Identity | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._portal_context: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._client = ChainClient(url, identity=identity, timeout=timeout, transport=transport)
        self._closed = False

    def _call(self, method: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        future = None
        try:
            future = self._portal.start_task_soon(functools.partial(method, *args, **kwargs))
            return future.result()
        except BaseException:
            # Ctrl-C (or any interruption of this thread) must not leave the call running
            # in the portal's thread, where closing the portal would wait for it forever.
            if future is not None:
                future.cancel()
            raise

    @property
    def url(self) -> str:
        return self._client.url

    @property
    def identity(self) -> Identity | None:
        return self._client.identity

    def __enter__(self) -> SyncChainClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._close_client)
        finally:
            # A call that Ctrl-C cut short between two steps may still run in the portal:
            # cancel whatever is left instead of waiting for an answer that may never come.
            with contextlib.suppress(RuntimeError):
                self._portal.call(self._portal.stop, True)
            self._portal_context.__exit__(None, None, None)

    async def _close_client(self) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT):
            await self._client.close()

    # -- chain ---------------------------------------------------------------------------------

    def head(self) -> dict[str, Any]:
        return self._call(self._client.head)

    def chain_id(self) -> str:
        return self._call(self._client.chain_id)

    def genesis(self) -> dict[str, Any]:
        return self._call(self._client.genesis)

    def block(self, height: int) -> dict[str, Any]:
        return self._call(self._client.block, height)

    def transaction(self, tx_hash: str) -> dict[str, Any]:
        return self._call(self._client.transaction, tx_hash)

    # -- transactions --------------------------------------------------------------------------

    def sign(self, call: str, args: dict[str, Any]) -> SignedTransaction:
        return self._call(self._client.sign, call, args)

    def submit(
        self,
        call: str,
        args: dict[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> SubmitResult:
        return self._call(self._client.submit, call, args, wait=wait, timeout=timeout)

    def submit_signed(
        self, tx: SignedTransaction, *, wait: bool = True, timeout: float = 30.0
    ) -> SubmitResult:
        return self._call(self._client.submit_signed, tx, wait=wait, timeout=timeout)

    def submit_batch(self, transactions: list[SignedTransaction]) -> list[dict[str, Any]]:
        return self._call(self._client.submit_batch, transactions)

    def wait_included(
        self, tx_hash: str, *, timeout: float = 30.0, poll: float = 0.05
    ) -> dict[str, Any]:
        return self._call(self._client.wait_included, tx_hash, timeout=timeout, poll=poll)

    # -- calls, by domain ----------------------------------------------------------------------

    def transfer(self, to: str, amount: int) -> SubmitResult:
        return self._call(self._client.transfer, to, amount)

    def faucet(self, amount: int) -> SubmitResult:
        return self._call(self._client.faucet, amount)

    def create_twin(self, relay: str = "") -> int:
        return self._call(self._client.create_twin, relay)

    def create_farm(self, name: str, pricing_policy_id: int = 1) -> int:
        return self._call(self._client.create_farm, name, pricing_policy_id)

    def add_farm_ip(self, farm_id: int, ip: str, gateway: str) -> SubmitResult:
        return self._call(self._client.add_farm_ip, farm_id, ip, gateway)

    def register_node(self, farm_id: int, resources: dict[str, int], **fields: Any) -> int:
        return self._call(self._client.register_node, farm_id, resources, **fields)

    def update_node(self, farm_id: int, resources: dict[str, int], **fields: Any) -> SubmitResult:
        return self._call(self._client.update_node, farm_id, resources, **fields)

    def report_uptime(self, uptime: int, timestamp: int) -> SubmitResult:
        return self._call(self._client.report_uptime, uptime, timestamp)

    def create_node_contract(
        self,
        node_id: int,
        deployment_hash: str,
        sealed_deployment: str,
        public_ips: int = 0,
        *,
        approvers: list[int] | None = None,
        capacity: dict[str, int] | None = None,
    ) -> SubmitResult:
        return self._call(
            self._client.create_node_contract,
            node_id,
            deployment_hash,
            sealed_deployment,
            public_ips,
            approvers=approvers,
            capacity=capacity,
        )

    def update_node_contract(
        self,
        contract_id: int,
        deployment_hash: str,
        sealed_deployment: str,
        *,
        approvers: list[int] | None = None,
        capacity: dict[str, int] | None = None,
    ) -> SubmitResult:
        return self._call(
            self._client.update_node_contract,
            contract_id,
            deployment_hash,
            sealed_deployment,
            approvers=approvers,
            capacity=capacity,
        )

    def cancel_contract(self, contract_id: int) -> SubmitResult:
        return self._call(self._client.cancel_contract, contract_id)

    def report_result(self, contract_id: int, version: int, sealed_results: str) -> SubmitResult:
        return self._call(self._client.report_result, contract_id, version, sealed_results)

    def report_resources(self, contract_id: int, used: dict[str, int]) -> SubmitResult:
        return self._call(self._client.report_resources, contract_id, used)

    # -- state ---------------------------------------------------------------------------------

    def account(self, address: str) -> dict[str, Any]:
        return self._call(self._client.account, address)

    def twin(self, twin_id: int) -> dict[str, Any]:
        return self._call(self._client.twin, twin_id)

    def twin_of(self, address: str) -> dict[str, Any] | None:
        return self._call(self._client.twin_of, address)

    def farm(self, farm_id: int) -> dict[str, Any]:
        return self._call(self._client.farm, farm_id)

    def node(self, node_id: int) -> dict[str, Any]:
        return self._call(self._client.node, node_id)

    def contract(self, contract_id: int) -> dict[str, Any]:
        return self._call(self._client.contract, contract_id)

    def query(self, kind: str, **filters: Any) -> dict[str, Any]:
        return self._call(self._client.query, kind, **filters)

    # -- events --------------------------------------------------------------------------------

    def events(
        self,
        from_height: int = 0,
        *,
        reconnect_delay: float = 0.5,
        give_up_after: float | None = 60.0,
    ) -> Iterator[ChainEvent]:
        stream = self._client.events(
            from_height, reconnect_delay=reconnect_delay, give_up_after=give_up_after
        )
        try:
            while True:
                try:
                    yield self._portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None and not self._closed:
                self._portal.call(aclose)

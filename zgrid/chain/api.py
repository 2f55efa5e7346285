"""The ledger's HTTP API: state reads, signed transaction submission, and the event stream.

Errors come back as ``{"error": {"code": ..., "message": ...}}`` with 400 for a
refused transaction or bad request, 404 for an unknown id, 503 when storage failed.
The event stream is server-sent events: each event's id is ``<height>-<index>``;
reconnecting with ``Last-Event-ID`` (or ``?from_height=``) resumes with no gap
and no duplicate.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from zgrid import __version__
from zgrid.chain.errors import (
    ChainError,
    NotFound,
    RejectCode,
    TransactionRejected,
    describe_validation_error,
)
from zgrid.chain.ledger import Ledger, TxStatus
from zgrid.chain.query import NodeFilter, node_json, page
from zgrid.chain.records import Account, ChainEvent, Contract, Farm, Twin
from zgrid.chain.store import AFTER_ALL_EVENTS
from zgrid.chain.transaction import MAX_TRANSACTION_BYTES, SignedTransaction
from zgrid.identity import CanonicalJSONError, canonical_loads

__all__ = ["create_app"]

Page = Annotated[int, Query(ge=1)]
Size = Annotated[int, Query(ge=1, le=1000)]
_KEEPALIVE = 15.0
MAX_BATCH_BYTES = 64 * MAX_TRANSACTION_BYTES


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def _parse_cursor(text: str) -> tuple[int, int]:
    height, _, index = text.partition("-")
    try:
        return int(height), int(index)
    except ValueError as exc:
        raise TransactionRejected(
            RejectCode.MALFORMED, f"bad event id {text!r}; expected <height>-<index>"
        ) from exc


def create_app(ledger: Ledger) -> FastAPI:
    app = FastAPI(
        title="zgrid ledger",
        version=__version__,
        description="Signed transactions, blocks, twins, farms, nodes, contracts and their events.",
    )

    @app.exception_handler(TransactionRejected)
    async def _rejected(_: Request, exc: TransactionRejected) -> JSONResponse:
        return _error(400, exc.code, exc.message)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(ChainError)
    async def _chain_error(_: Request, exc: ChainError) -> JSONResponse:
        return _error(503, "unavailable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(
            400, "invalid_request", describe_validation_error(exc, whole="request", skip=1)
        )

    _chain_routes(app, ledger)
    _transaction_routes(app, ledger)
    _state_routes(app, ledger)
    _event_routes(app, ledger)
    return app


def _chain_routes(app: FastAPI, ledger: Ledger) -> None:

    @app.get("/chain/head", tags=["chain"])
    async def head() -> dict[str, Any]:
        signed = ledger.head
        return {
            "chain_id": ledger.chain_id,
            "height": signed.header.height,
            "hash": signed.hash,
            "timestamp": signed.header.timestamp,
            "state_commitment": signed.header.state_commitment,
            "block_time": ledger.block_time,
        }

    @app.get("/genesis", tags=["chain"])
    async def genesis() -> dict[str, Any]:
        return ledger.genesis.model_dump(mode="json")

    @app.get("/blocks/{height}", tags=["chain"])
    async def block(height: int) -> dict[str, Any]:
        signed = ledger.store.block(height)
        if signed is None:
            raise NotFound(f"no block {height}")
        transactions = [tx_hash for tx_hash, _, _ in ledger.store.block_transactions(height)]
        return {**signed.model_dump(), "transactions": transactions}

    @app.get("/blocks", tags=["chain"])
    async def blocks(
        start: Annotated[int, Query(ge=0)] = 0, limit: Size = 100
    ) -> list[dict[str, Any]]:
        return [signed.model_dump() for signed in ledger.store.blocks(start, limit)]


def _transaction_routes(app: FastAPI, ledger: Ledger) -> None:

    @app.get("/transactions/{tx_hash}", tags=["transactions"])
    async def transaction(tx_hash: str) -> dict[str, Any]:
        return ledger.status(tx_hash).to_json()

    async def _read_json(request: Request, limit: int) -> Any:
        # Read in pieces and stop at the limit: a huge body is refused before it is held.
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TransactionRejected(
                    RejectCode.MALFORMED, f"request body larger than {limit} bytes"
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            return canonical_loads(body)
        except CanonicalJSONError as exc:
            raise TransactionRejected(
                RejectCode.MALFORMED, f"body is not acceptable JSON: {exc}"
            ) from exc

    def _submit(document: Any) -> TxStatus:
        return ledger.submit(SignedTransaction.parse(document))

    @app.post(
        "/transactions",
        tags=["transactions"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SignedTransaction.model_json_schema()}},
            }
        },
    )
    async def submit(
        request: Request,
        wait: bool = False,
        timeout: Annotated[float, Query(gt=0, le=300)] = 30.0,
    ) -> dict[str, Any]:
        """Submit one signed transaction. With ``wait=true`` answer once it is in a committed block."""
        accepted = _submit(await _read_json(request, MAX_TRANSACTION_BYTES))
        if wait:
            return (await ledger.wait_included(accepted.hash, timeout)).to_json()
        return accepted.to_json()

    @app.post("/transactions/batch", tags=["transactions"])
    async def submit_batch(request: Request) -> list[dict[str, Any]]:
        """Submit a list of signed transactions, applied in order; one answer per transaction."""
        documents = await _read_json(request, MAX_BATCH_BYTES)
        if not isinstance(documents, list):
            raise TransactionRejected(
                RejectCode.MALFORMED, "a batch is a JSON list of transactions"
            )
        answers: list[dict[str, Any]] = []
        for document in documents:
            try:
                answers.append({"hash": _submit(document).hash})
            except TransactionRejected as exc:
                answers.append({"error": {"code": exc.code, "message": exc.message}})
        return answers


def _state_routes(app: FastAPI, ledger: Ledger) -> None:
    def now() -> int:
        return ledger.head.header.timestamp

    @app.get("/accounts/{address}", tags=["state"])
    async def account(
        address: Annotated[
            str, Path(pattern="^[0-9a-f]{64}$", description="hex ed25519 public key")
        ],
    ) -> dict[str, Any]:
        found = ledger.state.accounts.get(address) or Account(address=address)
        return found.model_dump()

    def _get(table: Any, key: int, what: str) -> Any:
        found = table.get(key)
        if found is None:
            raise NotFound(f"no {what} {key}")
        return found

    @app.get("/twins/{twin_id}", tags=["state"], response_model=Twin)
    async def twin(twin_id: int) -> Twin:
        found: Twin = _get(ledger.state.twins, twin_id, "twin")
        return found

    @app.get("/twins", tags=["state"])
    async def twins(
        account: str | None = None,
        page_number: Annotated[Page, Query(alias="page")] = 1,
        size: Size = 50,
    ) -> dict[str, Any]:
        state = ledger.state
        if account is None:
            twins: Iterable[Twin] = state.twins.values()
        else:
            ref = state.twin_by_account.get(account)
            found = None if ref is None else state.twins.get(ref.id)
            twins = [] if found is None else [found]
        return page((t.model_dump() for t in twins), page_number, size)

    @app.get("/farms/{farm_id}", tags=["state"], response_model=Farm)
    async def farm(farm_id: int) -> Farm:
        found: Farm = _get(ledger.state.farms, farm_id, "farm")
        return found

    @app.get("/farms", tags=["state"])
    async def farms(
        *,
        twin_id: int | None = None,
        name: str | None = None,
        page_number: Annotated[Page, Query(alias="page")] = 1,
        size: Size = 50,
    ) -> dict[str, Any]:
        state = ledger.state
        if name is None:
            farms: Iterable[Farm] = state.farms.values()
        else:
            ref = state.farm_by_name.get(name.lower())
            found = None if ref is None else state.farms.get(ref.id)
            farms = [] if found is None else [found]
        rows = (f.model_dump() for f in farms if twin_id is None or f.twin_id == twin_id)
        return page(rows, page_number, size)

    @app.get("/nodes/{node_id}", tags=["state"])
    async def node(node_id: int) -> dict[str, Any]:
        return node_json(_get(ledger.state.nodes, node_id, "node"), ledger.state, now())

    @app.get("/nodes", tags=["state"])
    async def nodes(
        *,
        farm_id: int | None = None,
        twin_id: int | None = None,
        status: Annotated[str | None, Query(pattern="^(up|down|standby)$")] = None,
        free_mru: int | None = None,
        free_sru: int | None = None,
        free_hru: int | None = None,
        free_ips: int | None = None,
        rented: bool | None = None,
        page_number: Annotated[Page, Query(alias="page")] = 1,
        size: Size = 50,
    ) -> dict[str, Any]:
        wanted = NodeFilter(
            farm_id, twin_id, status, free_mru, free_sru, free_hru, free_ips, rented
        )
        timestamp = now()
        rows = (node_json(n, ledger.state, timestamp) for n in ledger.state.nodes.values())
        return page((row for row in rows if wanted.matches(row)), page_number, size)

    @app.get("/contracts/{contract_id}", tags=["state"], response_model=Contract)
    async def contract(contract_id: int) -> Contract:
        found: Contract = _get(ledger.state.contracts, contract_id, "contract")
        return found

    @app.get("/contracts", tags=["state"])
    async def contracts(
        *,
        twin_id: int | None = None,
        node_id: int | None = None,
        type: Annotated[str | None, Query(pattern="^(node|name|rent)$")] = None,
        state: Annotated[str | None, Query(pattern="^(created|grace_period|deleted)$")] = None,
        page_number: Annotated[Page, Query(alias="page")] = 1,
        size: Size = 50,
    ) -> dict[str, Any]:
        rows = (
            c.model_dump()
            for c in ledger.state.contracts.values()
            if (twin_id is None or c.twin_id == twin_id)
            and (node_id is None or c.node_id == node_id)
            and (type is None or c.type == type)
            and (state is None or c.state == state)
        )
        return page(rows, page_number, size)


def _event_routes(app: FastAPI, ledger: Ledger) -> None:

    @app.get("/events", tags=["events"])
    async def events(after: str = "0--1", limit: Size = 1000) -> list[dict[str, Any]]:
        """Committed events after the position ``<height>-<index>``, in order."""
        return [
            e.model_dump()
            for e in ledger.store.events(
                after=_parse_cursor(after), until_height=ledger.head.header.height, limit=limit
            )
        ]

    @app.get("/events/stream", tags=["events"])
    async def stream(
        request: Request,
        from_height: Annotated[int, Query(ge=0)] = 0,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-sent events: every event of every committed block from ``from_height``."""
        cursor = (
            _parse_cursor(last_event_id) if last_event_id else (from_height - 1, AFTER_ALL_EVENTS)
        )
        return StreamingResponse(
            _follow(request, cursor),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    async def _follow(request: Request, cursor: tuple[int, int]) -> AsyncIterator[bytes]:
        while not ledger.closing and not await request.is_disconnected():
            committed = ledger.head.header.height
            batch: list[ChainEvent] = ledger.store.events(
                after=cursor, until_height=committed, limit=1000
            )
            for event in batch:
                cursor = (event.height, event.index)
                yield _sse(
                    "event", event.cursor, json.dumps(event.model_dump(), separators=(",", ":"))
                )
            if len(batch) == 1000:
                continue
            if cursor < (committed, AFTER_ALL_EVENTS):
                cursor = (committed, AFTER_ALL_EVENTS)
                yield _sse(
                    "head", f"{committed}-{AFTER_ALL_EVENTS}", json.dumps({"height": committed})
                )
            if not await ledger.wait_for_height(committed + 1, _KEEPALIVE):
                yield b": keep-alive\n\n"


def _sse(kind: str, event_id: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode()

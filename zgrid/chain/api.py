"""The ledger's HTTP API: state reads, signed transaction submission, and the event stream.

Errors come back as ``{"error": {"code": ..., "message": ...}}`` (zgrid.web's one
shape) with 400 for a refused transaction or bad request, 404 for an unknown id,
413 for a body too large, 503 when storage failed. The event stream is server-sent
events: each event's id is ``<height>-<index>``; reconnecting with ``Last-Event-ID``
(or ``?from_height=``) resumes with no gap and no duplicate.

Nothing slow runs on the event loop the block producer shares: SQLite reads run in a
bounded thread pool, parsing batches and checking their signatures in worker
processes; at
most ``MAX_REPLAYS`` followers read history at once, and a follower that does not
take what it is sent within ``SEND_TIMEOUT`` is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import multiprocessing
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from zgrid import __version__
from zgrid.chain.errors import ChainError, NotFound, RejectCode, TransactionRejected
from zgrid.chain.ledger import Ledger
from zgrid.chain.query import NodeFilter, node_json, page
from zgrid.chain.records import Account, Contract, Farm, Twin
from zgrid.chain.store import AFTER_ALL_EVENTS
from zgrid.chain.transaction import MAX_TRANSACTION_BYTES, SignedTransaction
from zgrid.identity import CanonicalJSONError, canonical_loads
from zgrid.web import error_response, install_error_handlers, read_body

__all__ = ["MAX_BATCH_BYTES", "MAX_JSON_DEPTH", "MAX_REPLAYS", "SEND_TIMEOUT", "create_app"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_INT64 = 2**63 - 1  # what SQLite can hold, and so the largest height or id there can be
Page = Annotated[int, Query(ge=1, le=MAX_INT64)]
Size = Annotated[int, Query(ge=1, le=1000)]
Id = Annotated[int, Path(ge=0, le=MAX_INT64)]
Count = Annotated[int | None, Query(ge=0, le=MAX_INT64)]
_KEEPALIVE = 15.0
MAX_BATCH_BYTES = 64 * MAX_TRANSACTION_BYTES
MAX_JSON_DEPTH = 32  # objects and arrays inside one request body
_INT_RANGE = range(-(2**63), 2**64)
MAX_REPLAYS = 4  # followers reading the event history at one time
MAX_BATCHES = 2  # batch bodies parsed and signature-checked at one time
STREAM_BATCH = 200  # events read and held per follower at a time
SEND_TIMEOUT = 30.0  # seconds a follower may leave one event unread before it is dropped
# Batches up to this size are checked on the loop (about 0.1 s of it at most); larger
# ones in a worker process, so that no batch holds the loop longer than that.
INLINE_BATCH_BYTES = 256 * 1024
_PARSED_PER_TURN = 256  # batch transactions applied before the loop serves others


def _malformed(message: str) -> TransactionRejected:
    return TransactionRejected(RejectCode.MALFORMED, message)


def _parse_cursor(text: str) -> tuple[int, int]:
    height, _, index = text.partition("-")
    try:
        cursor = int(height), int(index)
    except ValueError:
        cursor = (-2, -2)
    if not all(-1 <= part <= MAX_INT64 for part in cursor):
        raise _malformed(f"bad event id {text[:40]!r}; expected <height>-<index>")
    return cursor


def load_document(body: bytes) -> Any:
    """A request body as JSON a transaction may hold, or TransactionRejected naming why not.

    Beyond canonical JSON: integers fit in 64 bits, strings are valid Unicode (no
    lone surrogates), and nesting stays within MAX_JSON_DEPTH, so nothing admitted
    can fail later when it is hashed, stored or served.
    """
    try:
        document = canonical_loads(body)
    except CanonicalJSONError as exc:
        raise _malformed(f"body is not acceptable JSON: {exc}") from None
    except ValueError:  # an integer past Python's digit limit (4300)
        raise _malformed("body holds an integer with too many digits") from None
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise _malformed(f"body is nested more than {MAX_JSON_DEPTH} levels deep")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _malformed("body holds a string that is not valid Unicode") from None
        elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT_RANGE:
            raise _malformed(
                f"body holds an integer that does not fit in 64 bits ({str(value)[:24]}...)"
            )
    return document


def _parse_transaction(document: Any) -> SignedTransaction:
    tx = SignedTransaction.parse(document)
    try:
        tx.hash  # noqa: B018  (hashing canonical JSON is where a bad value would fail)
    except (CanonicalJSONError, ValueError) as exc:
        raise _malformed(f"transaction cannot be hashed: {exc}") from None
    return tx


def check_batch(body: bytes, chain_id: str) -> list[SignedTransaction | bytes] | tuple[str, str]:
    """Parse a batch and check its signatures, in a worker process.

    Each item comes back as the parsed transaction when its signature holds (marked
    checked, so the state machine does not check it again; or it names another chain,
    which the ledger refuses in its own words), or as the refusal's answer already
    written as JSON bytes; a batch refused whole comes back as (code, message). A
    process, not a thread: parsing holds the GIL, which would stall the event loop
    for as long as a batch takes.
    """
    try:
        documents = load_document(body)
        if not isinstance(documents, list):
            raise _malformed("a batch is a JSON list of transactions")
    except TransactionRejected as exc:
        # Sent back as a value: the exception itself does not survive the trip between processes.
        return (str(exc.code), exc.message)
    checked: list[SignedTransaction | bytes] = []
    for document in documents:
        try:
            tx = _parse_transaction(document)
            # The state machine checks the chain before the signature; keep that order.
            if tx.body.chain_id == chain_id:
                tx.check_signature()
            checked.append(tx)
        except TransactionRejected as exc:
            checked.append(_answer_json({"error": {"code": exc.code, "message": exc.message}}))
    return checked


def _answer_json(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()


class _EventStream(EventSourceResponse):
    """Server-sent events; a reader that stops taking them is dropped, not waited for."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("dropped an event-stream reader that did not keep up")


class Workers:
    """The API's thread pool (SQLite reads), its process pool (batch checks), and how
    many replays and batches may use them at once."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="chain-api")
        self._processes: ProcessPoolExecutor | None = None
        self.replays = asyncio.Semaphore(MAX_REPLAYS)
        self.batches = asyncio.Semaphore(MAX_BATCHES)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(function, *args))

    async def start(self) -> None:
        """Start the worker processes now (importing zgrid there takes a second)."""
        await self.run_apart(check_batch, b"[]", "")

    async def run_apart(self, function: Callable[..., T], *args: Any) -> T:
        """``function`` in a worker process (started on first use unless ``start``ed)."""
        if self._processes is None:
            self._processes = ProcessPoolExecutor(
                max_workers=MAX_BATCHES, mp_context=multiprocessing.get_context("spawn")
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._processes, functools.partial(function, *args))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)


def create_app(ledger: Ledger) -> FastAPI:
    app = FastAPI(
        title="zgrid ledger",
        version=__version__,
        description="Signed transactions, blocks, twins, farms, nodes, contracts and their events.",
    )
    install_error_handlers(app, log=log)

    @app.exception_handler(TransactionRejected)
    async def _rejected(_: Request, exc: TransactionRejected) -> JSONResponse:
        return error_response(400, exc.code, exc.message)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    @app.exception_handler(ChainError)
    async def _chain_error(_: Request, exc: ChainError) -> JSONResponse:
        return error_response(503, "unavailable", str(exc))

    workers = Workers()
    app.state.workers = workers  # closed by whoever serves the app (zgrid.chain.server)
    _chain_routes(app, ledger, workers)
    _transaction_routes(app, ledger, workers)
    _state_routes(app, ledger)
    _event_routes(app, ledger, workers)
    return app


def _chain_routes(app: FastAPI, ledger: Ledger, workers: Workers) -> None:

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

    def read_block(height: int) -> dict[str, Any]:
        signed = ledger.store.block(height)
        if signed is None:
            raise NotFound(f"no block {height}")
        transactions = [tx_hash for tx_hash, _, _ in ledger.store.block_transactions(height)]
        return {**signed.model_dump(), "transactions": transactions}

    @app.get("/blocks/{height}", tags=["chain"])
    async def block(height: Id) -> dict[str, Any]:
        return await workers.run(read_block, height)

    @app.get("/blocks", tags=["chain"])
    async def blocks(
        start: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0, limit: Size = 100
    ) -> list[dict[str, Any]]:
        found = await workers.run(ledger.store.blocks, start, limit)
        return [signed.model_dump() for signed in found]


def _transaction_routes(app: FastAPI, ledger: Ledger, workers: Workers) -> None:

    @app.get("/transactions/{tx_hash}", tags=["transactions"])
    async def transaction(
        tx_hash: Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="hex BLAKE2b-256")],
    ) -> dict[str, Any]:
        return (await workers.run(ledger.status, tx_hash)).to_json()

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
        body = await read_body(request, limit=MAX_TRANSACTION_BYTES)
        accepted = ledger.submit(_parse_transaction(load_document(body)))
        if wait:
            return (await ledger.wait_included(accepted.hash, timeout)).to_json()
        return accepted.to_json()

    @app.post("/transactions/batch", tags=["transactions"], response_model=list[dict[str, Any]])
    async def submit_batch(request: Request) -> Response:
        """Submit a list of signed transactions, applied in order; one answer per transaction."""
        async with workers.batches:
            body = await read_body(request, limit=MAX_BATCH_BYTES)
            if len(body) <= INLINE_BATCH_BYTES:
                # A small batch costs the loop less than the trip to a worker and back.
                checked = check_batch(body, ledger.chain_id)
            else:
                checked = await workers.run_apart(check_batch, body, ledger.chain_id)
        if isinstance(checked, tuple):
            raise TransactionRejected(RejectCode(checked[0]), checked[1])
        answers: list[bytes] = []
        for number, item in enumerate(checked, start=1):
            if isinstance(item, bytes):
                answers.append(item)
                continue
            try:
                answer: dict[str, Any] = {"hash": ledger.submit(item).hash}
            except TransactionRejected as exc:
                answer = {"error": {"code": exc.code, "message": exc.message}}
            answers.append(_answer_json(answer))
            if number % _PARSED_PER_TURN == 0:
                await asyncio.sleep(0)  # let the head, reads and the producer run between turns
        # Joined from answers written apart: encoding 16,000 of them here takes 0.1-0.5 s.
        return Response(b"[" + b",".join(answers) + b"]", media_type="application/json")


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
    async def twin(twin_id: Id) -> Twin:
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
    async def farm(farm_id: Id) -> Farm:
        found: Farm = _get(ledger.state.farms, farm_id, "farm")
        return found

    @app.get("/farms", tags=["state"])
    async def farms(
        *,
        twin_id: Count = None,
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
    async def node(node_id: Id) -> dict[str, Any]:
        return node_json(_get(ledger.state.nodes, node_id, "node"), ledger.state, now())

    @app.get("/nodes", tags=["state"])
    async def nodes(
        *,
        farm_id: Count = None,
        twin_id: Count = None,
        status: Annotated[str | None, Query(pattern="^(up|down|standby)$")] = None,
        free_mru: Count = None,
        free_sru: Count = None,
        free_hru: Count = None,
        free_ips: Count = None,
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
    async def contract(contract_id: Id) -> Contract:
        found: Contract = _get(ledger.state.contracts, contract_id, "contract")
        return found

    @app.get("/contracts", tags=["state"])
    async def contracts(
        *,
        twin_id: Count = None,
        node_id: Count = None,
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


def _event_routes(app: FastAPI, ledger: Ledger, workers: Workers) -> None:

    @app.get("/events", tags=["events"])
    async def events(after: str = "0--1", limit: Size = 1000) -> list[dict[str, Any]]:
        """Committed events after the position ``<height>-<index>``, in order."""
        found = await workers.run(
            functools.partial(
                ledger.store.events,
                after=_parse_cursor(after),
                until_height=ledger.head.header.height,
                limit=limit,
            )
        )
        return [e.model_dump() for e in found]

    @app.get("/events/stream", tags=["events"], response_class=EventSourceResponse)
    async def stream(
        from_height: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> EventSourceResponse:
        """Server-sent events: every event of every committed block from ``from_height``."""
        cursor = (
            _parse_cursor(last_event_id) if last_event_id else (from_height - 1, AFTER_ALL_EVENTS)
        )
        return _EventStream(
            _follow(cursor),
            ping=_KEEPALIVE,
            sep="\n",
            send_timeout=SEND_TIMEOUT,
            headers={"Cache-Control": "no-store"},
        )

    async def _follow(cursor: tuple[int, int]) -> AsyncIterator[ServerSentEvent]:
        while not ledger.closing:
            committed = ledger.head.header.height
            async with workers.replays:
                batch = await workers.run(
                    functools.partial(
                        ledger.store.event_documents,
                        after=cursor,
                        until_height=committed,
                        limit=STREAM_BATCH,
                    )
                )
            for height, index, document in batch:
                cursor = (height, index)
                yield ServerSentEvent(document, event="event", id=f"{height}-{index}")
            if len(batch) == STREAM_BATCH:
                continue
            if cursor < (committed, AFTER_ALL_EVENTS):
                cursor = (committed, AFTER_ALL_EVENTS)
                yield ServerSentEvent(
                    f'{{"height":{committed}}}',
                    event="head",
                    id=f"{committed}-{AFTER_ALL_EVENTS}",
                )
            await ledger.wait_for_height(committed + 1, _KEEPALIVE)

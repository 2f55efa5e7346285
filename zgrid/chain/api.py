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
import re
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from zgrid import __version__
from zgrid.chain.api_economy import economy_routes
from zgrid.chain.api_models import (
    BatchAnswer,
    Block,
    ChainHead,
    ContractPage,
    ContractView,
    FarmPage,
    NodePage,
    NodeView,
    TransactionStatus,
    TwinPage,
)
from zgrid.chain.block import SignedHeader
from zgrid.chain.errors import ChainError, NotFound, RejectCode, TransactionRejected
from zgrid.chain.genesis import Genesis
from zgrid.chain.ledger import Ledger
from zgrid.chain.query import NodeFilter, node_json, page
from zgrid.chain.records import Account, ChainEvent, Contract, Farm, Twin
from zgrid.chain.store import AFTER_ALL_EVENTS
from zgrid.chain.transaction import MAX_TRANSACTION_BYTES, SignedTransaction, TransactionBody
from zgrid.identity import CanonicalJSONError, canonical_loads
from zgrid.web import (
    document_errors,
    error_response,
    error_responses,
    install_error_handlers,
    read_body,
)

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


def _at_most(limit: int) -> str:
    """A regular expression for the decimals 0 ... ``limit``, with no leading zeros."""
    digits = str(limit)
    shorter = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    same = []
    for place, digit in enumerate(digits):
        low = "1" if place == 0 else "0"
        if int(digit) > int(low):
            rest = len(digits) - place - 1
            same.append(f"{digits[:place]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    return "|".join(["0", *shorter, *same, digits])


_PART = f"(-1|{_at_most(MAX_INT64)})"
EVENT_ID = f"^{_PART}-{_PART}$"  # <height>-<index>, each -1 or a height or index SQLite holds
_CURSOR = re.compile(EVENT_ID)


def _parse_cursor(text: str, where: str) -> tuple[int, int]:
    """``<height>-<index>`` as a position, or a MALFORMED refusal naming ``where``."""
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise _malformed(
            f"{where}: bad event id {text[:40]!r}; expected <height>-<index>, "
            f"each -1 or a decimal number up to {MAX_INT64} with no leading zeros"
        )
    return int(found[1]), int(found[2])


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
    document_errors(app, every=(500, 503))  # 503: storage failed, under any route
    _document_schemas(app, SignedTransaction, TransactionBody)

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
    economy_routes(app, ledger, workers)
    return app


def _document_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Put ``models`` among the spec's schemas, for request bodies the routes read raw."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template=_REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


_REF = "#/components/schemas/{model}"
_TRANSACTION = {"$ref": _REF.format(model="SignedTransaction")}
# Any item is taken: one that is not a signed transaction is answered with its error.
_BATCH_ITEM = {"anyOf": [_TRANSACTION, {"description": "anything else, refused in its place"}]}
_BODY_ERRORS = error_responses(408, 413)  # a body that stalls, or is larger than allowed
_EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events: `event: event` with a ChainEvent as its data and "
        '`id: <height>-<index>`, then `event: head` with `{"height": n}` once caught up; '
        "comment lines keep the connection alive",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def _chain_routes(app: FastAPI, ledger: Ledger, workers: Workers) -> None:

    @app.get("/chain/head", tags=["chain"], response_model=ChainHead)
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

    @app.get("/genesis", tags=["chain"], response_model=Genesis)
    async def genesis() -> dict[str, Any]:
        return ledger.genesis.model_dump(mode="json")

    def read_block(height: int) -> dict[str, Any]:
        signed = ledger.store.block(height)
        if signed is None:
            raise NotFound(f"no block {height}")
        transactions = [tx_hash for tx_hash, _, _ in ledger.store.block_transactions(height)]
        return {**signed.model_dump(), "transactions": transactions}

    @app.get("/blocks/{height}", tags=["chain"], response_model=Block)
    async def block(height: Id) -> dict[str, Any]:
        return await workers.run(read_block, height)

    @app.get("/blocks", tags=["chain"], response_model=list[SignedHeader])
    async def blocks(
        start: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0, limit: Size = 100
    ) -> list[dict[str, Any]]:
        found = await workers.run(ledger.store.blocks, start, limit)
        return [signed.model_dump() for signed in found]


def _transaction_routes(app: FastAPI, ledger: Ledger, workers: Workers) -> None:

    @app.get("/transactions/{tx_hash}", tags=["transactions"], response_model=TransactionStatus)
    async def transaction(
        tx_hash: Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="hex BLAKE2b-256")],
    ) -> dict[str, Any]:
        return (await workers.run(ledger.status, tx_hash)).to_json()

    @app.post(
        "/transactions",
        tags=["transactions"],
        response_model=TransactionStatus,
        responses=_BODY_ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _TRANSACTION}},
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

    @app.post(
        "/transactions/batch",
        tags=["transactions"],
        response_class=Response,
        responses={
            200: {
                "description": "One answer per transaction, in order: its hash, or why it "
                "was refused",
                "model": list[BatchAnswer],
            },
            **_BODY_ERRORS,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": _BATCH_ITEM}}
                },
            }
        },
    )
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

    @app.get("/accounts/{address}", tags=["state"], response_model=Account)
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

    @app.get("/twins", tags=["state"], response_model=TwinPage)
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

    @app.get("/farms", tags=["state"], response_model=FarmPage)
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

    @app.get("/nodes/{node_id}", tags=["state"], response_model=NodeView)
    async def node(node_id: Id) -> dict[str, Any]:
        return node_json(_get(ledger.state.nodes, node_id, "node"), ledger.state, now())

    @app.get("/nodes", tags=["state"], response_model=NodePage)
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

    def contract_view(found: Contract) -> dict[str, Any]:
        return {**found.model_dump(), **ledger.state.billing_of(found.id).model_dump()}

    @app.get("/contracts/{contract_id}", tags=["state"], response_model=ContractView)
    async def contract(contract_id: Id) -> dict[str, Any]:
        return contract_view(_get(ledger.state.contracts, contract_id, "contract"))

    @app.get("/contracts", tags=["state"], response_model=ContractPage)
    async def contracts(
        *,
        twin_id: Count = None,
        node_id: Count = None,
        type: Annotated[str | None, Query(pattern="^(node|name|rent)$")] = None,
        state: Annotated[str | None, Query(pattern="^(created|grace_period|deleted)$")] = None,
        name: Annotated[
            str | None,
            Query(pattern=r"^[a-z0-9_-]{3,64}$", description="the live name contract of a name"),
        ] = None,
        page_number: Annotated[Page, Query(alias="page")] = 1,
        size: Size = 50,
    ) -> dict[str, Any]:
        source: Iterable[Contract] = ledger.state.contracts.values()
        if name is not None:
            # The name's index, not a scan: a gateway node asks this for every name it serves.
            ref = ledger.state.contract_by_name.get(name)
            found = None if ref is None else ledger.state.contracts.get(ref.id)
            source = [] if found is None else [found]
        rows = (
            contract_view(c)
            for c in source
            if (twin_id is None or c.twin_id == twin_id)
            and (node_id is None or c.node_id == node_id)
            and (type is None or c.type == type)
            and (state is None or c.state == state)
        )
        return page(rows, page_number, size)


def _event_routes(app: FastAPI, ledger: Ledger, workers: Workers) -> None:

    @app.get("/events", tags=["events"], response_model=list[ChainEvent])
    async def events(
        after: Annotated[
            str,
            Query(
                description="an event id `<height>-<index>`; `0--1` is the very start",
                json_schema_extra={"pattern": EVENT_ID},
            ),
        ] = "0--1",
        limit: Size = 1000,
    ) -> list[dict[str, Any]]:
        """Committed events after the position ``<height>-<index>``, in order."""
        found = await workers.run(
            functools.partial(
                ledger.store.events,
                after=_parse_cursor(after, "query.after"),
                until_height=ledger.head.header.height,
                limit=limit,
            )
        )
        return [e.model_dump() for e in found]

    @app.get(
        "/events/stream",
        tags=["events"],
        response_class=EventSourceResponse,
        response_model=None,
        responses=_EVENT_STREAM,
    )
    async def stream(
        from_height: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
        last_event_id: Annotated[
            str,
            Header(
                description="the id of the last event seen; resume right after it "
                "(empty: start at `from_height`)",
                json_schema_extra={"pattern": f"^$|{EVENT_ID}"},
            ),
        ] = "",
    ) -> EventSourceResponse:
        """Server-sent events: every event of every committed block from ``from_height``."""
        cursor = (
            _parse_cursor(last_event_id, "header.last-event-id")
            if last_event_id
            else (from_height - 1, AFTER_ALL_EVENTS)
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

"""The indexer: follows the ledger block by block into the explorer's database.

Each block's signed header is checked before anything of it is stored: the validator of
genesis signed it, it links to the block before, and its events hash to its events root.
A block is applied whole in one transaction with the cursor, so after a crash the
indexer resumes right after the last block it stored; a block is never applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from zgrid.chain import (
    ChainClient,
    ChainEvent,
    Genesis,
    LedgerUnavailable,
    NotFound,
    SignedHeader,
    VerificationFailed,
    check_events,
    check_header,
)
from zgrid.explorer.errors import LedgerMismatch, UntrustedBlock
from zgrid.explorer.projection import BlockInfo, apply_events
from zgrid.explorer.store import ChainIdentity, ExplorerStore, Position
from zgrid.identity import canonical_dumps

__all__ = ["Indexer", "IndexerStatus"]

log = logging.getLogger(__name__)

HEADER_BATCH = 100  # headers asked for at once
EVENT_PAGE = 1000  # the most events the ledger answers per page
_AFTER_ALL = 2**31  # an event index past every event of a block, as the ledger's cursors use


@dataclass
class IndexerStatus:
    """Where the indexer stands, for the API and for progress bars."""

    height: int = -1
    ledger_height: int = -1
    events: int = 0
    error: str = ""
    following: bool = False


class Indexer:
    """Index the ledger ``chain`` into ``store``. One indexer per database writes at a
    time; a second one finds each block already applied and skips it."""

    def __init__(
        self,
        store: ExplorerStore,
        chain: ChainClient,
        *,
        validator: str | None = None,
        poll: float = 0.5,
        header_batch: int = HEADER_BATCH,
        on_block: Callable[[IndexerStatus], None] | None = None,
        until: int | None = None,
    ) -> None:
        self.store = store
        self.chain = chain
        self.trusted_validator = validator
        self.poll = poll
        self.header_batch = header_batch
        self.on_block = on_block
        self.until = until  # the last height to index; None follows forever
        self.status = IndexerStatus()
        self._genesis: Genesis | None = None
        self._parent: SignedHeader | None = None
        self._position: Position | None = None

    # -- start ---------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Read the ledger's genesis, pin it in the database (or refuse a database of another
        chain), and find where indexing stands."""
        document = await self.chain.genesis()
        try:
            genesis = Genesis.model_validate(document)
        except ValidationError as exc:
            raise UntrustedBlock(f"the ledger's genesis is not a genesis document: {exc}") from None
        if self.trusted_validator and genesis.validator != self.trusted_validator:
            raise LedgerMismatch(
                f"the ledger's validator is {genesis.validator[:16]}…, "
                f"not the trusted {self.trusted_validator[:16]}…"
            )
        identity = ChainIdentity(
            chain_id=genesis.chain_id,
            validator=genesis.validator,
            genesis=canonical_dumps(genesis.model_dump(mode="json")).decode(),
        )
        await asyncio.to_thread(self.store.pin, identity)
        self._genesis = genesis
        self._position = await asyncio.to_thread(self.store.position)
        self._parent = None
        if self._position is not None:
            self._parent = await self._stored_parent(self._position)
            self.status.height = self._position.height
            self.status.events = self._position.events

    async def _stored_parent(self, position: Position) -> SignedHeader:
        """The header of the last block stored, read again from the ledger: it must be the
        same block (a ledger that rewrote its history is not followed)."""
        found = await self._headers(position.height, 1)
        if not found or found[0].hash != position.block_hash:
            raise LedgerMismatch(
                f"the ledger's block {position.height} is not the block this database indexed "
                f"({position.block_hash[:16]}…): give another --db, or --rebuild"
            )
        return found[0]

    # -- following -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Follow the ledger until ``stop`` is set; an unreachable ledger is waited for."""
        stop = stop or asyncio.Event()
        if self._genesis is None:
            await self.prepare()
        self.status.following = True
        try:
            while not stop.is_set():
                try:
                    applied = await self.step()
                    self.status.error = ""
                except LedgerUnavailable as exc:
                    self.status.error = str(exc)
                    log.warning("indexer: %s; trying again", exc)
                    applied = 0
                if applied == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.poll)
        finally:
            self.status.following = False

    async def catch_up(self) -> int:
        """Apply every block the ledger has now; return how many were applied."""
        if self._genesis is None:
            await self.prepare()
        total = 0
        while applied := await self.step():
            total += applied
        return total

    async def step(self) -> int:
        """Apply the next batch of blocks; 0 when there is none yet."""
        if self._genesis is None:
            await self.prepare()
        start = 0 if self._position is None else self._position.height + 1
        head = await self.chain.head()
        self.status.ledger_height = int(head.get("height", -1))
        wanted = self.header_batch
        if self.until is not None:
            wanted = min(wanted, self.until - start + 1)
            if wanted <= 0:
                return 0
        headers = await self._headers(start, wanted)
        if not headers:
            return 0
        events = await self._events(start, headers[-1].header.height)
        applied = 0
        for signed in headers:
            block_events = events.get(signed.header.height, [])
            self._check(signed, block_events)
            if not await self._apply(signed, block_events):
                break
            applied += 1
        return applied

    # -- reading the ledger --------------------------------------------------------------------

    async def _headers(self, start: int, limit: int) -> list[SignedHeader]:
        try:
            documents = await self.chain.headers(start, limit)
        except NotFound:
            return []
        headers = []
        for document in documents:
            try:
                headers.append(SignedHeader.model_validate(document))
            except ValidationError as exc:
                raise UntrustedBlock(
                    f"the ledger answered a block header that is not one: {exc}"
                ) from None
        expected = list(range(start, start + len(headers)))
        if [signed.header.height for signed in headers] != expected:
            raise UntrustedBlock(
                f"the ledger answered blocks {[s.header.height for s in headers][:5]}… "
                f"for blocks from {start}"
            )
        return headers

    async def _events(self, first: int, last: int) -> dict[int, list[ChainEvent]]:
        """Every event of blocks ``first`` to ``last``, by height."""
        found: dict[int, list[ChainEvent]] = {}
        after = f"{first - 1}-{_AFTER_ALL}" if first > 0 else "0--1"
        while True:
            page = await self.chain.event_page(after, EVENT_PAGE)
            for event in page:
                if event.height > last:
                    return found
                found.setdefault(event.height, []).append(event)
            if len(page) < EVENT_PAGE:
                return found
            after = page[-1].cursor

    # -- checking and applying -----------------------------------------------------------------

    def _check(self, signed: SignedHeader, events: list[ChainEvent]) -> None:
        assert self._genesis is not None
        where = f"block {signed.header.height} from {self.chain.url}"
        try:
            check_header(where, signed, self._genesis, self._parent)
            check_events(where, signed, events)
        except VerificationFailed as exc:
            raise UntrustedBlock(f"{exc}; nothing of it was stored") from None

    async def _apply(self, signed: SignedHeader, events: list[ChainEvent]) -> bool:
        header = signed.header
        after = self._position
        position = Position(
            height=header.height,
            block_hash=signed.hash,
            timestamp=header.timestamp,
            events=(0 if after is None else after.events) + len(events),
        )
        block = BlockInfo(height=header.height, timestamp=header.timestamp)
        previous_time = 0 if after is None else after.timestamp

        def apply(connection: Any) -> None:
            apply_events(connection, events, block, previous_time=previous_time)

        stored = await asyncio.to_thread(self.store.apply_block, after, position, apply)
        if not stored:  # another indexer stored it first: carry on from where it is
            self._position = await asyncio.to_thread(self.store.position)
            if self._position is not None:
                self._parent = await self._stored_parent(self._position)
            return False
        self._position, self._parent = position, signed
        self.status.height = position.height
        self.status.events = position.events
        self.status.ledger_height = max(self.status.ledger_height, position.height)
        if self.on_block is not None:
            self.on_block(self.status)
        return True

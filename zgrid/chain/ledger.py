"""The validator: accepts transactions, applies them at once, seals a block every block time.

A transaction is applied to the state the moment it arrives (so a refusal is
immediate and precise) and joins the open block. Every ``block_time`` the open
block is sealed: its write set fixes the state commitment, the validator signs
the header, and the block is committed to the store. Only then are the
transaction's waiters told it is included — that acknowledgement survives kill -9.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zgrid.chain.block import BlockHeader, SignedHeader, events_root, transactions_root
from zgrid.chain.domains.devtime import time_offset
from zgrid.chain.errors import (
    ChainStorageError,
    GenesisError,
    NotFound,
    RejectCode,
    TransactionRejected,
)
from zgrid.chain.genesis import Genesis, load_genesis, load_validator_key
from zgrid.chain.machine import StateMachine
from zgrid.chain.records import ChainEvent
from zgrid.chain.state import GENESIS_PARENT, WriteSet, next_commitment
from zgrid.chain.store import BlockLog
from zgrid.chain.tables import LedgerState
from zgrid.chain.transaction import SignedTransaction
from zgrid.identity import Identity, canonical_dumps

__all__ = ["GENESIS_META", "STORE_FILE", "Ledger", "TxStatus"]

log = logging.getLogger(__name__)

STORE_FILE = "chain.sqlite"
GENESIS_META = "genesis"


@dataclass(frozen=True)
class TxStatus:
    hash: str
    status: str  # "pending" or "included"
    height: int
    index: int
    result: dict[str, Any]
    events: list[ChainEvent]

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "status": self.status,
            "height": self.height,
            "index": self.index,
            "result": self.result,
            "events": [event.model_dump() for event in self.events],
        }


@dataclass
class _OpenBlock:
    height: int
    timestamp: int
    transactions: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    events: list[ChainEvent] = field(default_factory=list)
    results: dict[str, tuple[int, dict[str, Any], list[ChainEvent]]] = field(default_factory=dict)

    def status(self, tx_hash: str, state: str) -> TxStatus:
        index, result, events = self.results[tx_hash]
        return TxStatus(tx_hash, state, self.height, index, result, events)


class Ledger:
    def __init__(
        self,
        *,
        store: BlockLog,
        genesis: Genesis,
        validator: Identity,
        block_time: float = 1.0,
        max_block_transactions: int = 50_000,
        clock: Callable[[], float] = time.time,
        time_scale: float = 1.0,
    ) -> None:
        if validator.address != genesis.validator:
            raise GenesisError("the validator key does not belong to the genesis validator")
        if time_scale != 1.0 and genesis.faucet is None:
            raise GenesisError(
                "ledger time runs faster than the clock only on dev chains (a genesis with a "
                "faucet); this chain's time is the clock's"
            )
        if not 1.0 <= time_scale <= 1_000_000.0:
            raise GenesisError(f"the time scale must be between 1 and 1000000, got {time_scale}")
        self.time_scale = time_scale
        self.store = store
        self.genesis = genesis
        self.validator = validator
        self.block_time = block_time
        self.max_block_transactions = max_block_transactions
        self._clock = clock
        self.state = LedgerState()
        self.machine = StateMachine(genesis, self.state)
        self._waiters: dict[str, list[asyncio.Future[TxStatus]]] = {}
        self._sealing: _OpenBlock | None = None  # signed, being written to the store
        # Blocks are written by a thread of their own: never queued behind readers' work.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="block-writer")
        self._head_changed = asyncio.Event()  # set (and replaced) when the head moves
        self._failure: BaseException | None = None
        self.closing = False
        # ``head`` is the last block committed to the store; ``_sealed`` the last one signed,
        # which may still be being written while the next block fills.
        self.head = self._start()
        self._sealed = self.head
        if time_scale != 1.0:
            # Ledger time from now on runs time_scale times faster than the clock (dev
            # chains: days of billing in minutes), on from where the chain's time is.
            started = clock()
            # The head's time includes what dev calls moved it; the offset is added again.
            base = max(started, float(self.head.header.timestamp - time_offset(self.state)))
            self._clock = lambda: base + (clock() - started) * time_scale
        self._open = self._open_block()

    @classmethod
    def open(cls, data_dir: Path, **options: Any) -> Ledger:
        """The validator of the chain in ``data_dir`` (from `zgrid chain init`)."""
        genesis = load_genesis(data_dir)
        validator = load_validator_key(data_dir)
        return cls(
            store=BlockLog(data_dir / STORE_FILE), genesis=genesis, validator=validator, **options
        )

    # -- start-up ----------------------------------------------------------------------------

    def _start(self) -> SignedHeader:
        genesis_json = canonical_dumps(self.genesis.model_dump(mode="json")).decode()
        head = self.store.head()
        if head is None:
            return self._write_genesis_block(genesis_json)
        if self.store.meta(GENESIS_META) != genesis_json:
            raise GenesisError(f"{self.store.path} holds a different chain than this genesis")
        self.store.load_state(self.state)
        return head

    def _write_genesis_block(self, genesis_json: str) -> SignedHeader:
        self.machine.apply_genesis()
        writes = self.state.take_writes()
        genesis = _OpenBlock(height=0, timestamp=self.genesis.genesis_time)
        signed = self._seal(genesis, GENESIS_PARENT.hex(), GENESIS_PARENT, writes)
        self.store.commit_block(signed, [], [], writes, meta={GENESIS_META: genesis_json})
        return signed

    def _seal(
        self, block: _OpenBlock, parent_hash: str, previous_commitment: bytes, writes: WriteSet
    ) -> SignedHeader:
        """The signed header of ``block`` on top of its parent (the genesis block has none)."""
        header = BlockHeader(
            chain_id=self.genesis.chain_id,
            height=block.height,
            parent_hash=parent_hash,
            timestamp=block.timestamp,
            transactions_root=transactions_root([tx_hash for tx_hash, _, _ in block.transactions]),
            events_root=events_root([event.model_dump() for event in block.events]),
            state_commitment=next_commitment(previous_commitment, writes).hex(),
            transaction_count=len(block.transactions),
            validator=self.validator.address,
        )
        return SignedHeader.sign(header, self.validator)

    def _open_block(self) -> _OpenBlock:
        # Ledger time never runs backwards, even if the machine's clock does.
        timestamp = max(int(self._clock()) + time_offset(self.state), self._sealed.header.timestamp)
        block = _OpenBlock(height=self._sealed.header.height + 1, timestamp=timestamp)
        # What ledger time made due comes first in the block, before any transaction.
        for index, (name, data) in enumerate(
            self.machine.begin_block(height=block.height, timestamp=timestamp)
        ):
            block.events.append(
                ChainEvent(height=block.height, index=index, tx_hash=None, name=name, data=data)
            )
        return block

    # -- transactions --------------------------------------------------------------------------

    def unstored_events(self) -> list[ChainEvent]:
        """Events of the block being written and of the open block: not in the store yet."""
        sealing = [] if self._sealing is None else list(self._sealing.events)
        return sealing + list(self._open.events)

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    def submit(self, tx: SignedTransaction) -> TxStatus:
        """Apply ``tx`` to the open block, or raise TransactionRejected with nothing changed.

        Everything the block will hold of ``tx`` is encoded before it joins the block,
        so an admitted transaction cannot make sealing fail; one that breaks while
        being applied is refused alone (the state machine rolls it back).
        """
        if self._failure is not None:
            raise ChainStorageError(f"the ledger stopped after a storage failure: {self._failure}")
        block = self._open
        if len(block.transactions) >= self.max_block_transactions:
            raise TransactionRejected(
                RejectCode.MEMPOOL_FULL, "the open block is full; retry in a moment"
            )
        encoded_tx = tx.canonical()
        applied = self.machine.apply(tx, height=block.height, timestamp=block.timestamp)
        index = len(block.transactions)
        events = [
            ChainEvent(
                height=block.height,
                index=len(block.events) + offset,
                tx_hash=applied.tx_hash,
                name=name,
                data=data,
            )
            for offset, (name, data) in enumerate(applied.events)
        ]
        block.events.extend(events)
        block.transactions.append((applied.tx_hash, encoded_tx, applied.encoded_result))
        block.results[applied.tx_hash] = (index, applied.result, events)
        return block.status(applied.tx_hash, "pending")

    def next_nonce(self, address: str) -> int:
        return self.machine.next_nonce(address)

    def status(self, tx_hash: str) -> TxStatus:
        """Where a transaction is: pending in the open or sealing block, or included."""
        if tx_hash in self._open.results:
            return self._open.status(tx_hash, "pending")
        sealing = self._sealing
        if sealing is not None and tx_hash in sealing.results:
            return sealing.status(tx_hash, "pending")
        stored = self.store.transaction(tx_hash)
        if stored is None:
            raise NotFound(f"no transaction {tx_hash}")
        height, index, result = stored
        return TxStatus(
            tx_hash, "included", height, index, result, self.store.transaction_events(tx_hash)
        )

    async def wait_included(self, tx_hash: str, timeout: float) -> TxStatus:
        status = self.status(tx_hash)
        if status.status == "included":
            return status
        future: asyncio.Future[TxStatus] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_hash, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return self.status(tx_hash)
        finally:
            waiters = self._waiters.get(tx_hash)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[tx_hash]

    # -- blocks ----------------------------------------------------------------------------------

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        """Wait until a block at ``height`` or above is committed; False on timeout or shutdown.

        Waiters only watch an event the producer sets; there is no lock between them, so
        a waiter that is cancelled or times out can never hold up block production.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.closing and self.head.header.height < height:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._head_changed.wait(), left)
            except TimeoutError:
                return False
        return not self.closing

    def close_streams(self) -> None:
        """Tell event followers the server is going away, so their streams end now."""
        self.closing = True
        self._announce_head()

    def _announce_head(self) -> None:
        # Wake every waiter of the old event and give later waiters a fresh one.
        changed, self._head_changed = self._head_changed, asyncio.Event()
        changed.set()

    async def produce_block(self) -> SignedHeader:
        """Seal the open block, commit it, then acknowledge its transactions."""
        block = self._open
        writes = self.state.take_writes()
        previous = bytes.fromhex(self._sealed.header.state_commitment)
        signed = self._seal(block, self._sealed.hash, previous, writes)
        self._sealing = block
        # New transactions go to the next block while this one is written.
        self._sealed = signed
        self._open = self._open_block()
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._writer,
                functools.partial(
                    self.store.commit_block, signed, block.transactions, block.events, writes
                ),
            )
        except BaseException as exc:
            self._failure = exc
            raise
        self.head = signed
        self._sealing = None
        # Statuses only for those who wait: a block can hold tens of thousands.
        for tx_hash in block.results.keys() & self._waiters.keys():
            status = block.status(tx_hash, "included")
            for future in self._waiters.pop(tx_hash):
                if not future.done():
                    future.set_result(status)
        self._announce_head()
        return signed

    async def run(self, stop: asyncio.Event) -> None:
        """Produce a block every ``block_time`` seconds until ``stop`` is set.

        On stop, transactions already accepted into the open block are sealed into
        one last block, so a clean shutdown loses nothing that was accepted.
        """
        next_tick = time.monotonic() + self.block_time
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_tick - time.monotonic()))
            next_tick += self.block_time
            if next_tick < time.monotonic():  # fell behind (slow disk): do not burst to catch up
                next_tick = time.monotonic() + self.block_time
            if not stop.is_set() or self._open.transactions:
                await self.produce_block()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self.store.close()

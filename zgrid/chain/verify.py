"""Replay the whole block log from genesis and check it reaches exactly the stored chain.

Every block is checked for its header (chain id, height, link to the parent,
timestamps that never go back, the validator's signature, the transaction
count), the transaction and event roots and the state commitment; every
transaction's signature is verified again; the stored genesis must be the one in
``genesis.json``; at the end the replayed state must equal the stored state row
for row and the balances must add up to the issued supply.

All of it is read in one snapshot of the store (one SQLite read transaction), so
a ledger that keeps writing while this runs is seen as it was at the start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from zgrid.chain.block import SignedHeader, check_header, events_root, transactions_root
from zgrid.chain.domains import money
from zgrid.chain.errors import ChainStorageError, TransactionRejected, VerificationFailed
from zgrid.chain.genesis import Genesis, load_genesis
from zgrid.chain.ledger import GENESIS_META, STORE_FILE
from zgrid.chain.machine import StateMachine
from zgrid.chain.records import ChainEvent
from zgrid.chain.state import GENESIS_PARENT, next_commitment
from zgrid.chain.store import AFTER_ALL_EVENTS, BlockLog
from zgrid.chain.tables import LedgerState
from zgrid.chain.transaction import SignedTransaction
from zgrid.identity import CanonicalJSONError, canonical_dumps, canonical_loads

__all__ = ["VerifyReport", "verify_chain"]

_BATCH = 500


@dataclass(frozen=True)
class VerifyReport:
    height: int
    state_commitment: str
    transactions: int
    supply: int  # what the balances add up to: genesis + minted − burned
    minted: int = 0
    burned: int = 0


def verify_chain(
    data_dir: Path, *, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Replay ``data_dir``'s chain; raise VerificationFailed at the first difference."""
    genesis = load_genesis(data_dir)
    path = data_dir / STORE_FILE
    if not path.exists():
        raise ChainStorageError(f"no block store in {data_dir}")
    store = BlockLog(path, readonly=True)
    try:
        with store.snapshot():
            return _Replay(store, genesis, progress).run()
    finally:
        store.close()


def _parse_header(where: str, header_json: str, block_hash: str, signature: str) -> SignedHeader:
    try:
        return SignedHeader.model_validate(
            {"header": canonical_loads(header_json), "hash": block_hash, "signature": signature}
        )
    except (CanonicalJSONError, ValueError) as exc:  # ValidationError is a ValueError
        detail = _first_problem(exc)
        raise VerificationFailed(f"{where}: the stored header is damaged: {detail}") from None


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    return str(exc)


class _Replay:
    def __init__(
        self, store: BlockLog, genesis: Genesis, progress: Callable[[int, int], None] | None
    ) -> None:
        self.store = store
        self.genesis = genesis
        self.progress = progress
        self.state = LedgerState()
        self.machine = StateMachine(genesis, self.state)
        self.commitment = GENESIS_PARENT
        self.parent: SignedHeader | None = None
        self.transactions = 0

    def run(self) -> VerifyReport:
        store, genesis = self.store, self.genesis
        stored_genesis = store.meta(GENESIS_META)
        if stored_genesis is None:
            raise VerificationFailed("the block store records no genesis")
        if stored_genesis != canonical_dumps(genesis.model_dump(mode="json")).decode():
            raise VerificationFailed("the genesis stored with the blocks differs from genesis.json")
        head = store.head_height()
        if head is None:
            raise VerificationFailed("the block store holds no blocks")
        self.machine.apply_genesis()
        height = 0
        while height <= head:
            rows = store.block_rows(height, min(_BATCH, head - height + 1))
            if not rows:
                raise VerificationFailed(f"block {height} is missing")
            for stored_height, header_json, block_hash, signature in rows:
                if stored_height != height:
                    raise VerificationFailed(f"block {height} is missing")
                where = f"block {height}"
                signed = _parse_header(where, header_json, block_hash, signature)
                self._check_header(where, signed)
                self._replay_block(where, signed)
                self.parent = signed
                height += 1
                if self.progress is not None:
                    self.progress(height, head + 1)
        self._compare_state()
        supply = self.state.total_balances()
        issued = money.supply(self.state, genesis)
        if supply != issued.total:
            raise VerificationFailed(
                f"balances add up to {supply}; genesis issued {issued.genesis}, "
                f"{issued.minted} were minted and {issued.burned} burned since, "
                f"which leaves {issued.total}"
            )
        return VerifyReport(
            height=head,
            state_commitment=self.commitment.hex(),
            transactions=self.transactions,
            supply=supply,
            minted=issued.minted,
            burned=issued.burned,
        )

    def _check_header(self, where: str, signed: SignedHeader) -> None:
        check_header(where, signed, self.genesis, self.parent)

    def _stored_transactions(self, where: str, height: int) -> list[tuple[str, Any, Any]]:
        try:
            return self.store.block_transactions(height)
        except CanonicalJSONError as exc:
            raise VerificationFailed(f"{where}: a stored transaction is damaged: {exc}") from None

    def _replay_block(self, where: str, signed: SignedHeader) -> None:
        header = signed.header
        height = header.height
        stored = self._stored_transactions(where, height)
        if header.transactions_root != transactions_root([tx_hash for tx_hash, _, _ in stored]):
            raise VerificationFailed(f"{where}: transactions root does not match its transactions")
        if header.transaction_count != len(stored):
            raise VerificationFailed(
                f"{where}: the header counts {header.transaction_count} transactions, "
                f"the block holds {len(stored)}"
            )
        events: list[ChainEvent] = []
        if height > 0:  # the genesis block is genesis alone
            for name, data in self.machine.begin_block(height=height, timestamp=header.timestamp):
                events.append(
                    ChainEvent(height=height, index=len(events), tx_hash=None, name=name, data=data)
                )
        for index, (tx_hash, body, result) in enumerate(stored):
            try:
                tx = SignedTransaction.parse(body)
                computed_hash = tx.hash
            except (TransactionRejected, CanonicalJSONError, ValueError) as exc:
                raise VerificationFailed(
                    f"{where}: transaction {index} is damaged: {exc}"
                ) from None
            if computed_hash != tx_hash:
                raise VerificationFailed(f"{where}: transaction {index} hash mismatch")
            try:
                applied = self.machine.apply(tx, height=height, timestamp=header.timestamp)
            except TransactionRejected as exc:
                raise VerificationFailed(
                    f"{where}: transaction {tx_hash} is refused on replay: {exc}"
                ) from None
            if canonical_dumps(applied.result) != canonical_dumps(result):
                raise VerificationFailed(
                    f"{where}: transaction {tx_hash} gives a different result on replay"
                )
            for name, data in applied.events:
                events.append(
                    ChainEvent(
                        height=height, index=len(events), tx_hash=tx_hash, name=name, data=data
                    )
                )
        if header.events_root != events_root([event.model_dump() for event in events]):
            raise VerificationFailed(
                f"{where}: replayed events differ from the header's events root"
            )
        try:
            stored_events = self.store.events(
                after=(height - 1, AFTER_ALL_EVENTS), until_height=height, limit=len(events) + 1
            )
        except (CanonicalJSONError, ValueError) as exc:
            raise VerificationFailed(f"{where}: a stored event is damaged: {exc}") from None
        if stored_events != events:
            raise VerificationFailed(f"{where}: stored events differ from the replayed ones")
        self.commitment = next_commitment(self.commitment, self.state.take_writes())
        if self.commitment.hex() != header.state_commitment:
            raise VerificationFailed(f"{where}: state commitment differs on replay")
        self.transactions += len(stored)

    def _compare_state(self) -> None:
        replayed = self.state.dump()
        stored = self.store.state_rows()
        if replayed != stored:
            differing = sorted(
                key
                for key in replayed.keys() | stored.keys()
                if replayed.get(key) != stored.get(key)
            )
            table, key = differing[0]
            raise VerificationFailed(
                f"stored state differs from the replayed state at {table}/{key} "
                f"({len(differing)} record(s) differ)"
            )

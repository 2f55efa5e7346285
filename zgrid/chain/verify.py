"""Replay the whole block log from genesis and check it reaches exactly the stored chain.

Every block is checked for its link to the parent, the validator's signature,
the transaction and event roots and the state commitment; every transaction's
signature is verified again; at the end the replayed state must equal the
stored state row for row and the balances must add up to the issued supply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zgrid.chain.block import events_root, transactions_root
from zgrid.chain.errors import ChainStorageError, TransactionRejected, VerificationFailed
from zgrid.chain.genesis import Genesis, load_genesis
from zgrid.chain.ledger import STORE_FILE
from zgrid.chain.machine import StateMachine
from zgrid.chain.records import ChainEvent
from zgrid.chain.state import GENESIS_PARENT, next_commitment
from zgrid.chain.store import AFTER_ALL_EVENTS, BlockLog
from zgrid.chain.tables import LedgerState
from zgrid.chain.transaction import SignedTransaction
from zgrid.identity import canonical_dumps

__all__ = ["VerifyReport", "verify_chain"]

_BATCH = 500


@dataclass(frozen=True)
class VerifyReport:
    height: int
    state_commitment: str
    transactions: int
    supply: int


def verify_chain(
    data_dir: Path, *, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Replay ``data_dir``'s chain; raise VerificationFailed at the first difference."""
    genesis = load_genesis(data_dir)
    path = data_dir / STORE_FILE
    if not path.exists():
        raise ChainStorageError(f"no block store in {data_dir}")
    store = BlockLog(path)
    try:
        return _replay(store, genesis, progress)
    finally:
        store.close()


def _replay(
    store: BlockLog, genesis: Genesis, progress: Callable[[int, int], None] | None
) -> VerifyReport:
    head = store.head()
    if head is None:
        raise VerificationFailed("the block store holds no blocks")
    state = LedgerState()
    machine = StateMachine(genesis, state)
    machine.apply_genesis()
    commitment = GENESIS_PARENT
    parent_hash = GENESIS_PARENT.hex()
    transactions = 0
    height = 0
    while height <= head.header.height:
        for signed in store.blocks(height, _BATCH):
            header = signed.header
            where = f"block {header.height}"
            if header.height != height:
                raise VerificationFailed(f"{where}: expected height {height}")
            if not signed.is_valid() or header.validator != genesis.validator:
                raise VerificationFailed(f"{where}: hash or validator signature is wrong")
            if header.parent_hash != parent_hash:
                raise VerificationFailed(
                    f"{where}: parent hash does not link to block {height - 1}"
                )
            stored = store.block_transactions(height)
            events: list[ChainEvent] = []
            for index, (tx_hash, body, result) in enumerate(stored):
                tx = SignedTransaction.parse(body)
                if tx.hash != tx_hash:
                    raise VerificationFailed(f"{where}: transaction {index} hash mismatch")
                try:
                    applied = machine.apply(tx, height=height, timestamp=header.timestamp)
                except TransactionRejected as exc:
                    raise VerificationFailed(
                        f"{where}: transaction {tx_hash} is refused on replay: {exc}"
                    ) from exc
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
            if header.transactions_root != transactions_root([tx_hash for tx_hash, _, _ in stored]):
                raise VerificationFailed(
                    f"{where}: transactions root does not match its transactions"
                )
            if header.events_root != events_root([event.model_dump() for event in events]):
                raise VerificationFailed(
                    f"{where}: replayed events differ from the header's events root"
                )
            stored_events = store.events(
                after=(height - 1, AFTER_ALL_EVENTS), until_height=height, limit=len(events) + 1
            )
            if stored_events != events:
                raise VerificationFailed(f"{where}: stored events differ from the replayed ones")
            commitment = next_commitment(commitment, state.take_writes())
            if commitment.hex() != header.state_commitment:
                raise VerificationFailed(f"{where}: state commitment differs on replay")
            transactions += len(stored)
            parent_hash = signed.hash
            height += 1
            if progress is not None:
                progress(height, head.header.height + 1)
    _compare_state(store, state)
    supply = state.total_balances()
    if supply != genesis.supply:
        raise VerificationFailed(
            f"balances add up to {supply}, the issued supply is {genesis.supply}"
        )
    return VerifyReport(
        height=head.header.height,
        state_commitment=commitment.hex(),
        transactions=transactions,
        supply=supply,
    )


def _compare_state(store: BlockLog, state: LedgerState) -> None:
    replayed = state.dump()
    stored = store.state_rows()
    if replayed != stored:
        differing = sorted(
            key for key in replayed.keys() | stored.keys() if replayed.get(key) != stored.get(key)
        )
        table, key = differing[0]
        raise VerificationFailed(
            f"stored state differs from the replayed state at {table}/{key} ({len(differing)} record(s) differ)"
        )

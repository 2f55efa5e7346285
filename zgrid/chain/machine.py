"""The deterministic state machine: genesis, then one ``apply(transaction)`` per transaction.

Checks run in a fixed order so the same transaction is refused for the same
reason everywhere: chain id, signature, known call, valid arguments, nonce; then
the call runs inside a state journal, after the signer paid the transaction fee,
and is undone completely if it refuses. A call that breaks in a way no rule
foresaw is refused the same way (``failed``), alone: the block and every other
transaction in it stand. What an admitted transaction wrote, returned and emitted
has been encoded by then, so sealing its block cannot fail because of it.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from typing import Any

from zgrid.canonical import CanonicalJSONError, plain_dumps
from zgrid.chain.domains import BlockContext, Call, CallContext, build_block_steps, build_calls
from zgrid.chain.errors import RejectCode, TransactionRejected, UnstorableRecord
from zgrid.chain.genesis import Genesis
from zgrid.chain.records import Account
from zgrid.chain.state import encode_document
from zgrid.chain.tables import LedgerState
from zgrid.chain.transaction import SignedTransaction

__all__ = ["Applied", "StateMachine"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What applying one transaction did."""

    tx_hash: str
    result: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    encoded_result: bytes = b"{}"


class StateMachine:
    def __init__(self, genesis: Genesis, state: LedgerState) -> None:
        self.genesis = genesis
        self.state = state
        self.calls: dict[str, Call[Any]] = build_calls()
        self.block_steps = build_block_steps()

    def apply_genesis(self) -> None:
        for address, amount in sorted(self.genesis.balances.items()):
            self.state.accounts.put(address, Account(address=address, free=amount))

    def begin_block(self, *, height: int, timestamp: int) -> list[tuple[str, dict[str, Any]]]:
        """The ledger's own work when a block opens, before its transactions: what ledger
        time made due. Returns its events (they have no transaction).

        Deterministic like a transaction, and replayed at the same place by verification.
        A step that breaks is rolled back, logged and left out, the same way everywhere.
        """
        if not self.block_steps:
            return []
        context = BlockContext(
            state=self.state, genesis=self.genesis, height=height, timestamp=timestamp
        )
        self.state.begin()
        # Thousands of bills make as many records; collecting cycles over the whole state
        # in the middle of that costs more than the bills (refcounting frees them anyway).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for step in self.block_steps:
                step(context)
            context.settle()
            for name, data in context.events:
                # The ledger's own events, made of integers and strings by its own code:
                # the encoder's refusals (numbers past 64 bits, keys that are no strings)
                # are the checks left, without a walk over thousands of bills.
                try:
                    plain_dumps(data)
                except CanonicalJSONError:
                    encode_document(data, f"event {name}")
            self.state.commit()
        except Exception:
            self.state.rollback()
            log.exception("the ledger's work for block %d failed and was left out", height)
            return []
        except BaseException:
            self.state.rollback()
            raise
        finally:
            if collecting:
                gc.enable()
        return context.events

    def next_nonce(self, address: str) -> int:
        account = self.state.accounts.get(address)
        return 0 if account is None else account.nonce

    def apply(self, tx: SignedTransaction, *, height: int, timestamp: int) -> Applied:
        """Apply one transaction to the state, or raise TransactionRejected and change nothing."""
        body = tx.body
        if body.chain_id != self.genesis.chain_id:
            raise TransactionRejected(
                RejectCode.WRONG_CHAIN,
                f"transaction is for chain {body.chain_id!r}, this is {self.genesis.chain_id!r}",
            )
        tx.check_signature()
        call = self.calls.get(body.call)
        if call is None:
            known = ", ".join(sorted(self.calls))
            raise TransactionRejected(
                RejectCode.UNKNOWN_CALL, f"unknown call {body.call!r} (known: {known})"
            )
        args = call.parse(body.call, body.args)
        expected = self.next_nonce(body.signer)
        if body.nonce != expected:
            reason = "was already used" if body.nonce < expected else "is not the next one"
            raise TransactionRejected(
                RejectCode.BAD_NONCE,
                f"nonce {body.nonce} {reason}; the account's next nonce is {expected}",
            )
        tx_hash = tx.hash
        context = CallContext(
            state=self.state,
            genesis=self.genesis,
            signer=body.signer,
            height=height,
            timestamp=timestamp,
            call=body.call,
        )
        self.state.begin()
        try:
            account = context.account(body.signer)
            self.state.accounts.put(
                body.signer, account.model_copy(update={"nonce": account.nonce + 1})
            )
            if call.pays_fee and self.genesis.transaction_fee:
                context.pay_fee(self.genesis.transaction_fee)
            result = call.apply(context, args) or {}
            encoded_result = _encoded(result, context.events)
            self.state.commit()
        except TransactionRejected:
            self.state.rollback()
            raise
        except UnstorableRecord as exc:
            self.state.rollback()
            raise TransactionRejected(
                RejectCode.FAILED, f"{body.call} cannot be kept by the ledger: {_short(str(exc))}"
            ) from exc
        except Exception as exc:
            self.state.rollback()
            log.exception("%s (transaction %s) failed while being applied", body.call, tx_hash)
            raise TransactionRejected(
                RejectCode.FAILED,
                f"{body.call} failed while being applied and was refused, nothing of it kept "
                f"({type(exc).__name__}: {_short(str(exc))})",
            ) from exc
        except BaseException:
            self.state.rollback()
            raise
        return Applied(
            tx_hash=tx_hash, result=result, events=context.events, encoded_result=encoded_result
        )


def _encoded(result: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """The result's canonical JSON, after checking that the events have one too."""
    for name, data in events:
        encode_document(data, f"event {name}")
    return encode_document(result, "result")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

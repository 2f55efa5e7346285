"""What every call handler gets (the context) and how a call is declared (args model + function)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from zgrid.chain.errors import RejectCode, TransactionRejected, describe_validation_error
from zgrid.chain.genesis import Genesis
from zgrid.chain.records import Account, Twin
from zgrid.chain.tables import LedgerState
from zgrid.chain.units import format_tokens

__all__ = ["Args", "Call", "CallContext", "refuse"]

A = TypeVar("A", bound="Args")


class Args(BaseModel):
    """Arguments of a call: unknown fields refused, numbers and booleans strict."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def refuse(code: RejectCode, message: str) -> TransactionRejected:
    return TransactionRejected(code, message)


def invalid_args(call: str, detail: str) -> TransactionRejected:
    return TransactionRejected(RejectCode.INVALID_ARGS, f"invalid args for {call}: {detail}")


@dataclass
class CallContext:
    state: LedgerState
    genesis: Genesis
    signer: str
    height: int
    timestamp: int
    call: str = ""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def invalid(self, field: str, message: str) -> TransactionRejected:
        """An INVALID_ARGS refusal of this call's ``field``, worded like the argument checks."""
        return invalid_args(self.call, f"{field}: {message}")

    def emit(self, event: str, /, **data: Any) -> None:
        self.events.append((event, data))

    def account(self, address: str) -> Account:
        return self.state.accounts.get(address) or Account(address=address)

    def signer_twin(self) -> Twin:
        """The signer's twin, or a refusal telling them to create one."""
        ref = self.state.twin_by_account.get(self.signer)
        twin = None if ref is None else self.state.twins.get(ref.id)
        if twin is None:
            raise refuse(
                RejectCode.FORBIDDEN,
                f"account {self.signer[:16]}… has no twin; create one with twins.create",
            )
        return twin

    def debit(self, address: str, amount: int) -> None:
        account = self.account(address)
        if account.free < amount:
            raise refuse(
                RejectCode.INSUFFICIENT_BALANCE,
                f"free balance {format_tokens(account.free)} is less than the {format_tokens(amount)} tokens needed",
            )
        self.state.accounts.put(address, account.model_copy(update={"free": account.free - amount}))

    def credit(self, address: str, amount: int) -> None:
        account = self.account(address)
        self.state.accounts.put(address, account.model_copy(update={"free": account.free + amount}))

    def require_free(self, address: str, amount: int, what: str) -> None:
        free = self.account(address).free
        if free < amount:
            raise refuse(
                RejectCode.INSUFFICIENT_BALANCE,
                f"{what} needs a free balance of at least {format_tokens(amount)} tokens, "
                f"the account has {format_tokens(free)}",
            )


@dataclass(frozen=True)
class Call(Generic[A]):
    """A call name's argument model and the function that applies it."""

    args: type[A]
    apply: Callable[[CallContext, A], dict[str, Any] | None]

    def parse(self, name: str, raw: dict[str, Any]) -> A:
        try:
            return self.args.model_validate(raw)
        except ValidationError as exc:
            raise invalid_args(name, describe_validation_error(exc, whole="args")) from None

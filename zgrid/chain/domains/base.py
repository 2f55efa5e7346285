"""What every call handler gets (the context) and how a call is declared (args model + function).

Every integer a call accepts is declared with its range (``zgrid.chain.units``: ``U64``,
``Id``, ``Amount``, or a Field with both bounds inside 64 bits); :class:`Args` refuses,
when a call's model is defined, any integer field without one, so no call can forget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from zgrid.chain.domains import money
from zgrid.chain.domains.schedule import schedule, schedule_many
from zgrid.chain.errors import RejectCode, TransactionRejected, describe_validation_error
from zgrid.chain.genesis import Genesis
from zgrid.chain.records import Account, Twin
from zgrid.chain.tables import LedgerState
from zgrid.chain.units import I64_MIN, U64_MAX, format_tokens

__all__ = [
    "Args",
    "BlockContext",
    "BlockStep",
    "Call",
    "CallContext",
    "LedgerContext",
    "refuse",
    "unbounded_integers",
]

A = TypeVar("A", bound="Args")

_GET_TOKENS = "get tokens with `zgrid account faucet` (dev chains) or `zgrid account transfer`"


_SCHEMA_WORDS = {"properties", "items", "anyOf", "allOf", "oneOf", "additionalProperties"}


def unbounded_integers(model: type[BaseModel]) -> list[str]:
    """The integer fields of ``model`` (nested ones too) lacking a lower and upper bound in 64 bits."""
    problems: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("integer", "number"):
                low = node.get("minimum", node.get("exclusiveMinimum"))
                high = node.get("maximum", node.get("exclusiveMaximum"))
                if (
                    node["type"] == "number"
                    or low is None
                    or high is None
                    or low < I64_MIN
                    or high > U64_MAX
                ):
                    problems.append(where)
            for key, value in node.items():
                # Name fields, not schema keywords: "resources.cru", "$defs.Resources.cru".
                inner = where if key in _SCHEMA_WORDS else f"{where}.{key}".lstrip(".")
                walk(value, inner)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    walk(model.model_json_schema(), "")
    return problems


class Args(BaseModel):
    """Arguments of a call: unknown fields refused, numbers and booleans strict, integers bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        unbounded = unbounded_integers(cls)
        if unbounded:
            raise TypeError(
                f"{cls.__name__}: integer fields need a range inside 64 bits: {', '.join(unbounded)}"
            )


def refuse(code: RejectCode, message: str) -> TransactionRejected:
    return TransactionRejected(code, message)


def invalid_args(call: str, detail: str) -> TransactionRejected:
    return TransactionRejected(RejectCode.INVALID_ARGS, f"invalid args for {call}: {detail}")


def no_fee_left(address: str, fee: int, free: int) -> TransactionRejected:
    return refuse(
        RejectCode.INSUFFICIENT_BALANCE,
        f"a transaction costs a fee of {format_tokens(fee)} tokens and account {address[:16]}… "
        f"has {format_tokens(free)}; {_GET_TOKENS}",
    )


def add_node_usage(state: LedgerState, node_id: int, traffic: int, ip_seconds: int) -> None:
    """Add traffic and public-IP seconds billed on ``node_id`` to its farming period."""
    node = state.nodes.get(node_id)
    if node is not None and (traffic or ip_seconds):
        state.nodes.put(
            node_id,
            node.model_copy(
                update={
                    "period_traffic": min(U64_MAX, node.period_traffic + traffic),
                    "period_ip_seconds": min(U64_MAX, node.period_ip_seconds + ip_seconds),
                }
            ),
        )


class LedgerContext(Protocol):
    """What the ledger's shared rules (billing, ending a contract) need from a transaction's
    context or a block step's alike."""

    state: LedgerState
    genesis: Genesis
    height: int
    timestamp: int

    def emit(self, name: str, /, **data: Any) -> None: ...

    def free(self, address: str) -> int:
        """The account's free balance as the rules see it now."""
        ...

    def take(self, address: str, amount: int) -> None:
        """Debit ``amount`` the caller made sure :meth:`free` covers."""
        ...

    def pay_out(self, address: str, amount: int) -> None:
        """Credit ``amount`` that was already taken from a payer (a share of a payment)."""
        ...

    def count_burned(self, amount: int) -> None:
        """Count ``amount`` that was already taken from a payer as burned."""
        ...

    def schedule(self, when: int, item: str) -> None:
        """Make ``item`` due at ledger time ``when`` (zgrid.chain.domains.schedule)."""
        ...

    def add_node_usage(self, node_id: int, traffic: int, ip_seconds: int) -> None:
        """Count a bill's traffic and IP time into its node's farming period."""
        ...

    @property
    def farm_terms(self) -> dict[int, Any] | None:
        """Billing's memo of farms' terms while farms cannot change (a block's work)."""
        ...


@dataclass
class CallContext:
    state: LedgerState
    genesis: Genesis
    signer: str
    height: int
    timestamp: int
    call: str = ""
    fee: int = 0  # what the signer already paid for this transaction
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def invalid(self, field: str, message: str) -> TransactionRejected:
        """An INVALID_ARGS refusal of this call's ``field``, worded like the argument checks."""
        return invalid_args(self.call, f"{field}: {message}")

    def emit(self, name: str, /, **data: Any) -> None:
        self.events.append((name, data))

    def account(self, address: str) -> Account:
        return self.state.accounts.get(address) or Account(address=address)

    def signer_twin(self) -> Twin:
        """The signer's twin, or a refusal telling them to create one."""
        ref = self.state.twin_by_account.get(self.signer)
        twin = None if ref is None else self.state.twins.get(ref.id)
        if twin is None:
            raise refuse(
                RejectCode.FORBIDDEN,
                f"account {self.signer[:16]}… has no twin; create one with `zgrid twin create`",
            )
        return twin

    def _with_fee(self, address: str, free: int, amount: int) -> tuple[str, str, str]:
        """Balance, need and a note as the signer sees them: before the fee, the fee included."""
        if address != self.signer or not self.fee:
            return format_tokens(free), format_tokens(amount), ""
        return (
            format_tokens(free + self.fee),
            format_tokens(amount + self.fee),
            f" ({format_tokens(amount)} and the {format_tokens(self.fee)} token fee)",
        )

    def debit(self, address: str, amount: int) -> None:
        account = self.account(address)
        if account.free < amount:
            have, need, note = self._with_fee(address, account.free, amount)
            raise refuse(
                RejectCode.INSUFFICIENT_BALANCE,
                f"free balance {have} is less than the {need} tokens needed{note}",
            )
        money.take(self.state, address, amount)

    def credit(self, address: str, amount: int) -> None:
        money.credit(self.state, address, amount)

    def free(self, address: str) -> int:
        return money.free_balance(self.state, address)

    def take(self, address: str, amount: int) -> None:
        money.take(self.state, address, amount)

    def pay_out(self, address: str, amount: int) -> None:
        money.credit(self.state, address, amount)

    def count_burned(self, amount: int) -> None:
        money.count_burned(self.state, amount)

    def schedule(self, when: int, item: str) -> None:
        schedule(self.state, when, item)

    def add_node_usage(self, node_id: int, traffic: int, ip_seconds: int) -> None:
        add_node_usage(self.state, node_id, traffic, ip_seconds)

    @property
    def farm_terms(self) -> dict[int, Any] | None:
        return None  # a transaction may change a farm: nothing is kept

    def require_free(self, address: str, amount: int, what: str) -> None:
        free = self.account(address).free
        if free < amount:
            have, need, note = self._with_fee(address, free, amount)
            raise refuse(
                RejectCode.INSUFFICIENT_BALANCE,
                f"{what} needs a free balance of at least {need} tokens{note}, "
                f"the account has {have}; {_GET_TOKENS}",
            )

    def pay_fee(self, amount: int) -> None:
        """Take the transaction fee from the signer and burn it."""
        account = self.account(self.signer)
        if account.free < amount:
            raise no_fee_left(self.signer, amount, account.free)
        money.burn(self.state, self.signer, amount)
        self.fee = amount


@dataclass(frozen=True)
class Call(Generic[A]):
    """A call name's argument model, the function that applies it, and whether it pays the fee."""

    args: type[A]
    apply: Callable[[CallContext, A], dict[str, Any] | None]
    pays_fee: bool = True

    def parse(self, name: str, raw: dict[str, Any]) -> A:
        try:
            return self.args.model_validate(raw)
        except ValidationError as exc:
            raise invalid_args(name, describe_validation_error(exc, whole="args")) from None


@dataclass
class BlockContext:
    """What a block step gets: the state and the block's height and time, before any of
    its transactions runs. Steps do the ledger's own work that time makes due."""

    state: LedgerState
    genesis: Genesis
    height: int
    timestamp: int
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # The block's payments are settled once at its end: thousands of bills debit a few
    # twins and pay the same few accounts. A payer's balance counts its debits at once;
    # a payee's own bills in the block see its balance before its shares came in.
    debits: dict[str, int] = field(default_factory=dict)
    payouts: dict[str, int] = field(default_factory=dict)
    burned: int = 0
    scheduled: list[tuple[int, str]] = field(default_factory=list)
    usage: dict[int, tuple[int, int]] = field(default_factory=dict)
    memo: dict[int, Any] = field(default_factory=dict)

    def emit(self, name: str, /, **data: Any) -> None:
        self.events.append((name, data))

    def free(self, address: str) -> int:
        return money.free_balance(self.state, address) - self.debits.get(address, 0)

    def take(self, address: str, amount: int) -> None:
        if amount > self.free(address):
            raise ValueError(f"account {address[:16]}… cannot pay {amount}")
        if amount:
            self.debits[address] = self.debits.get(address, 0) + amount

    def pay_out(self, address: str, amount: int) -> None:
        if amount:
            self.payouts[address] = self.payouts.get(address, 0) + amount

    def count_burned(self, amount: int) -> None:
        self.burned += amount

    def schedule(self, when: int, item: str) -> None:
        self.scheduled.append((when, item))

    @property
    def farm_terms(self) -> dict[int, Any] | None:
        return self.memo

    def add_node_usage(self, node_id: int, traffic: int, ip_seconds: int) -> None:
        had = self.usage.get(node_id, (0, 0))
        self.usage[node_id] = (had[0] + traffic, had[1] + ip_seconds)

    def settle(self) -> None:
        """Write what the block's work moved and scheduled, in a fixed order."""
        for address in sorted(self.debits):
            money.take(self.state, address, self.debits[address])
        for address in sorted(self.payouts):
            money.credit(self.state, address, self.payouts[address])
        money.count_burned(self.state, self.burned)
        schedule_many(self.state, self.scheduled)
        for node_id in sorted(self.usage):
            add_node_usage(self.state, node_id, *self.usage[node_id])
        self.usage.clear()
        self.debits.clear()
        self.payouts.clear()
        self.burned = 0
        self.scheduled.clear()


BlockStep = Callable[[BlockContext], None]
"""The ledger's work at the start of a block (bills, grace periods, farming periods)."""

"""The genesis document: what a chain starts from, and the dev chain `zgrid chain init --dev` makes.

Prices are in units USD per hour (1 USD = 10,000,000 units; FORMATS.md);
balances are in token units (7 decimals). A dev chain also names a faucet
account that hands out tokens to anyone who asks, which production chains lack.
Every transaction but a faucet call pays ``transaction_fee`` units, which are burned.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zgrid.atomic import write_atomic
from zgrid.chain.errors import GenesisError, describe_validation_error
from zgrid.chain.units import MAX_AMOUNT, U64, UNITS_PER_TOKEN, Id, format_tokens
from zgrid.identity import Identity

__all__ = [
    "DEFAULT_TRANSACTION_FEE",
    "FarmingPolicy",
    "Genesis",
    "PricePolicy",
    "dev_genesis",
    "init_dev_chain",
    "load_genesis",
    "load_validator_key",
]

_ADDRESS = r"^[0-9a-f]{64}$"
GENESIS_FILE = "genesis.json"
VALIDATOR_KEY_FILE = "validator.key"
DEFAULT_TRANSACTION_FEE = (
    UNITS_PER_TOKEN // 1000
)  # 0.001 token: nothing to a user, a cost to a flood


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PricePolicy(_Strict):
    id: Id
    name: str
    cu: U64 = Field(description="units USD per CU per hour")
    su: U64 = Field(description="units USD per SU per hour")
    nu: U64 = Field(description="units USD per GB of traffic")
    ipu: U64 = Field(description="units USD per public IPv4 per hour")
    unique_name: U64 = Field(description="units USD per name contract per hour")
    domain_name: U64 = Field(description="units USD per domain per hour")
    foundation_account: str = Field(pattern=_ADDRESS)
    certified_sales_account: str = Field(pattern=_ADDRESS)


class FarmingPolicy(_Strict):
    id: Id
    name: str
    cu: U64 = Field(description="units USD per CU per month")
    su: U64 = Field(description="units USD per SU per month")
    nu: U64 = Field(description="units USD per NU per month")
    ipv4: U64 = Field(description="units USD per public IPv4 per month")
    minimal_uptime_permille: int = Field(ge=0, le=1000, default=950)


class Genesis(_Strict):
    chain_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")
    genesis_time: U64
    validator: str = Field(pattern=_ADDRESS)
    balances: dict[str, U64] = Field(default_factory=dict)
    price_policies: list[PricePolicy] = Field(min_length=1)
    farming_policies: list[FarmingPolicy] = Field(min_length=1)
    token_price: Id = Field(description="units USD per token, until the oracle sets another")
    oracle: str | None = Field(
        default=None,
        pattern=_ADDRESS,
        description="the account that sets the token price; none keeps token_price fixed",
    )
    faucet: str | None = Field(default=None, pattern=_ADDRESS)
    faucet_max: Id = Field(default=1_000 * UNITS_PER_TOKEN, description="units per faucet call")
    transaction_fee: U64 = Field(
        default=DEFAULT_TRANSACTION_FEE,
        le=MAX_AMOUNT,
        description="units every transaction but a faucet call pays, burned; 0 turns fees off",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Genesis:
        for address, amount in self.balances.items():
            if len(address) != 64 or any(c not in "0123456789abcdef" for c in address):
                raise ValueError(f"balances: {address!r} is not an address")
            if amount < 0:
                raise ValueError(f"balances: {address} has a negative balance")
        if self.supply > MAX_AMOUNT:
            raise ValueError(
                f"balances: the supply is more than the {format_tokens(MAX_AMOUNT)} tokens "
                "a ledger can hold"
            )
        if self.faucet is not None and self.balances.get(self.faucet, 0) <= 0:
            raise ValueError("faucet account has no balance to hand out")
        return self

    @property
    def supply(self) -> int:
        return sum(self.balances.values())

    def price_policy(self, policy_id: int) -> PricePolicy | None:
        return next((p for p in self.price_policies if p.id == policy_id), None)


def dev_genesis(
    *, validator: str, chain_id: str = "zgrid-dev", genesis_time: int | None = None
) -> tuple[Genesis, dict[str, Identity]]:
    """A dev chain's genesis and the keys of its special accounts (faucet, foundation)."""
    keys = {name: Identity(secrets.token_bytes(32)) for name in ("faucet", "foundation", "sales")}
    supply = 1_000_000_000 * UNITS_PER_TOKEN
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=int(time.time()) if genesis_time is None else genesis_time,
        validator=validator,
        balances={keys["faucet"].address: supply},
        price_policies=[
            PricePolicy(
                id=1,
                name="default",
                cu=100_000,
                su=50_000,
                nu=15_000,
                ipu=40_000,
                unique_name=2_500,
                domain_name=5_000,
                foundation_account=keys["foundation"].address,
                certified_sales_account=keys["sales"].address,
            )
        ],
        farming_policies=[
            FarmingPolicy(id=1, name="default", cu=2_400_000, su=1_000_000, nu=300_000, ipv4=50_000)
        ],
        token_price=1_000_000,  # 0.1 USD
        faucet=keys["faucet"].address,
        transaction_fee=DEFAULT_TRANSACTION_FEE,
    )
    return genesis, keys


def init_dev_chain(data_dir: Path, *, chain_id: str = "zgrid-dev") -> Genesis:
    """Write a dev genesis and a fresh validator key into ``data_dir`` (which must be new or empty)."""
    if (data_dir / GENESIS_FILE).exists():
        raise GenesisError(
            f"{data_dir} already holds a chain ({GENESIS_FILE}); refusing to overwrite it"
        )
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        validator = Identity(secrets.token_bytes(32))
        genesis, _ = dev_genesis(validator=validator.address, chain_id=chain_id)
        write_atomic(
            data_dir / VALIDATOR_KEY_FILE, (validator.seed.hex() + "\n").encode(), mode=0o600
        )
        document = json.dumps(genesis.model_dump(mode="json"), indent=2) + "\n"
        write_atomic(data_dir / GENESIS_FILE, document.encode(), mode=0o600)
    except OSError as exc:
        raise GenesisError(
            f"cannot write the chain into {data_dir}: {exc.strerror or exc}"
        ) from exc
    return genesis


def load_genesis(data_dir: Path) -> Genesis:
    path = data_dir / GENESIS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GenesisError(
            f"no {GENESIS_FILE} in {data_dir} (create one with `zgrid chain init --dev --data {data_dir}`)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise GenesisError(f"cannot read {path}: {exc}") from exc
    try:
        return Genesis.model_validate(document)
    except ValidationError as exc:
        raise GenesisError(f"{path}: {describe_validation_error(exc, whole='genesis')}") from None


def load_validator_key(data_dir: Path) -> Identity:
    path = data_dir / VALIDATOR_KEY_FILE
    try:
        return Identity(bytes.fromhex(path.read_text(encoding="utf-8").strip()))
    except FileNotFoundError as exc:
        raise GenesisError(
            f"no {VALIDATOR_KEY_FILE} in {data_dir}: this machine is not the chain's validator"
        ) from exc
    except (OSError, ValueError) as exc:
        raise GenesisError(f"{path} does not hold a validator key: {exc}") from exc

"""The devnet's own keys and what they hold on its ledger: the farmer with its farm, and the
publisher of the base images; each made once and found again by every later `up`."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from zgrid.atomic import write_atomic
from zgrid.chain import UNITS_PER_TOKEN, ChainClient
from zgrid.devnet.errors import DevnetError
from zgrid.identity import Identity

__all__ = ["FARM_NAME", "Accounts", "ensure_accounts", "load_key"]

FARM_NAME = "devnet"
_FARMER_TOKENS = 1_000  # the most one faucet call gives
_PUBLISHER_TOKENS = 100


@dataclass(frozen=True)
class Accounts:
    farmer: Identity
    farm_id: int
    publisher: Identity
    publisher_twin: int


def load_key(path: Path) -> Identity:
    """The identity whose 32-byte seed is in ``path`` (hex), made there (0600) if missing."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, (secrets.token_bytes(32).hex() + "\n").encode(), mode=0o600)
    try:
        seed = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise DevnetError(f"cannot read the devnet key {path}: {exc}") from exc
    if len(seed) != 32:
        raise DevnetError(f"{path} does not hold a 32-byte seed")
    os.chmod(path, 0o600)
    return Identity(seed)


async def _funded_twin(chain: ChainClient, identity: Identity, tokens: int) -> int:
    account = await chain.account(identity.address)
    if int(account.get("free", 0)) < tokens * UNITS_PER_TOKEN // 2:
        await chain.faucet(tokens * UNITS_PER_TOKEN)
    twin = await chain.twin_of(identity.address)
    if twin is not None:
        return int(twin["id"])
    return await chain.create_twin()


async def ensure_accounts(ledger_url: str, keys: Path, farm_ips: list[tuple[str, str]]) -> Accounts:
    """The farmer (funded, with a twin and the farm and its public IPs, alive only inside the
    devnet's namespaces) and the image publisher."""
    farmer = load_key(keys / "farmer.seed")
    publisher = load_key(keys / "publisher.seed")
    # Two signers, two nonce sequences: their transactions go into the same blocks.
    farm_id, publisher_twin = await asyncio.gather(
        _farm(ledger_url, farmer, farm_ips), _publisher(ledger_url, publisher)
    )
    return Accounts(farmer, farm_id, publisher, publisher_twin)


async def _farm(ledger_url: str, farmer: Identity, farm_ips: list[tuple[str, str]]) -> int:
    async with ChainClient(ledger_url, identity=farmer) as chain:
        twin_id = await _funded_twin(chain, farmer, _FARMER_TOKENS)
        page = await chain.query("farms", twin_id=twin_id, name=FARM_NAME)
        if page["items"]:
            return int(page["items"][0]["id"])
        farm_id = await chain.create_farm(FARM_NAME)
        for ip, gateway in farm_ips:
            await chain.add_farm_ip(farm_id, ip, gateway)
        return farm_id


async def _publisher(ledger_url: str, publisher: Identity) -> int:
    async with ChainClient(ledger_url, identity=publisher) as chain:
        return await _funded_twin(chain, publisher, _PUBLISHER_TOKENS)

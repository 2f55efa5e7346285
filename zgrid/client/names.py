"""Gateway names on the ledger: a spec's `name:` gateways are the deployer's only while its
twin holds a name contract for each, which the gateway node checks before serving.

The client claims a name before the gateway's contract is made, finds a name already its
own (an earlier deploy, an interrupted one) and leaves it, refuses a name another twin
holds, and gives a name back when no deployment of it uses it any more.
"""

from __future__ import annotations

from collections.abc import Iterable

from zgrid.chain import ChainClient
from zgrid.client.errors import NameTaken
from zgrid.client.spec.model import Spec
from zgrid.types import Deployment, GatewayNameProxy

__all__ = ["check_names", "claim_names", "deployed_names", "release_names", "spec_names"]


def spec_names(spec: Spec) -> list[str]:
    return sorted({g.name for g in spec.gateways if g.name})


def deployed_names(deployments: Iterable[Deployment]) -> set[str]:
    """The gateway names these deployments serve."""
    return {
        w.data.name
        for deployment in deployments
        for w in deployment.workloads
        if isinstance(w.data, GatewayNameProxy)
    }


async def _holder(chain: ChainClient, name: str) -> tuple[int, int] | None:
    found = await chain.name_contract(name)
    return None if found is None else (int(found["id"]), int(found["twin_id"]))


async def check_names(chain: ChainClient, names: Iterable[str], twin_id: int) -> None:
    """NameTaken for the first name another twin holds (a free name is fine: it is claimed
    when deployed)."""
    for name in names:
        held = await _holder(chain, name)
        if held is not None and held[1] != twin_id:
            raise NameTaken(
                f"gateway name {name!r} is taken: twin {held[1]} holds it with name contract"
                f" {held[0]}; choose another name"
            )


async def claim_names(chain: ChainClient, names: Iterable[str], twin_id: int) -> list[int]:
    """Name contracts for every name not held yet; the ids of those made."""
    made = []
    for name in names:
        await check_names(chain, [name], twin_id)
        if await _holder(chain, name) is None:
            await chain.create_name_contract(name)
            held = await _holder(chain, name)
            if held is None or held[1] != twin_id:  # claimed by someone else in between
                await check_names(chain, [name], twin_id)
            else:
                made.append(held[0])
    return made


async def release_names(chain: ChainClient, names: Iterable[str], twin_id: int) -> None:
    """Cancel this twin's name contracts for ``names`` (one already gone is fine)."""
    for name in sorted(names):
        held = await _holder(chain, name)
        if held is not None and held[1] == twin_id:
            await chain.cancel_contract(held[0])

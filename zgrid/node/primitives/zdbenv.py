"""The environment a zmachine's container gets, with the Zero-DB namespaces of its
own deployment.

A zdb workload's namespace is named by its workload id, which exists only once the
contract does, so the deployer cannot write it into the machine's env. The node adds,
for each zdb workload ``<name>`` of the deployment (``NAME`` is the name upper-cased,
every character outside ``[A-Z0-9]`` turned into ``_``):

- ``ZDB_<NAME>_HOST``: the node's Zero-DB address the machine can reach (its yggdrasil
  address); absent when the machine has no route to the node (no planetary network);
- ``ZDB_<NAME>_PORT``: the node's Zero-DB port;
- ``ZDB_<NAME>_NAMESPACE``: the namespace, the zdb workload's id;
- ``ZDB_<NAME>_PASSWORD``: its password, when it has one.

The machine's own env (its workload's, then its flist's) wins over these. They are
runtime env only: nothing of the deployment or its signed document changes.

Two zdb names that give the same ``NAME`` (``db`` and ``DB``) give neither any variable:
which one the machine would get is not for the node to guess.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from zgrid.node.primitives.base import Provisioning
from zgrid.types import ZDB, Deployment, ZMachine, workload_id

__all__ = ["container_environment", "env_name", "zdb_environment"]

_OUTSIDE = re.compile(r"[^A-Z0-9]")


def env_name(name: str) -> str:
    """``NAME`` of ``ZDB_<NAME>_…`` for the zdb workload called ``name``."""
    return _OUTSIDE.sub("_", name.upper())


def zdb_environment(
    deployment: Deployment, *, twin_id: int, contract_id: int, host: str | None, port: int
) -> dict[str, str]:
    """The ``ZDB_<NAME>_*`` variables of every zdb workload of ``deployment``.

    ``host`` is where the machine reaches the node's Zero-DB server, None when it cannot.
    """
    zdbs = [(w.name, w.data) for w in deployment.workloads if isinstance(w.data, ZDB)]
    taken = Counter(env_name(name) for name, _ in zdbs)
    env: dict[str, str] = {}
    for name, data in sorted(zdbs, key=lambda pair: pair[0]):
        prefix = f"ZDB_{env_name(name)}_"
        if taken[env_name(name)] > 1:
            continue
        if host is not None:
            env[prefix + "HOST"] = host
        env[prefix + "PORT"] = str(port)
        env[prefix + "NAMESPACE"] = workload_id(twin_id, contract_id, name)
        if data.password:
            env[prefix + "PASSWORD"] = data.password
    return env


def container_environment(
    item: Provisioning,
    image_env: Iterable[tuple[str, str]],
    *,
    zdb_port: int | None,
    node_address: str | None,
) -> dict[str, str]:
    """The whole env of the machine ``item``: its deployment's ``ZDB_*`` variables (none
    without ``zdb_port``; ``ZDB_*_HOST`` only with planetary and ``node_address``, the
    node's yggdrasil address), then its flist's ``image_env`` (name, value pairs), then its own env."""
    machine = item.workload.data
    assert isinstance(machine, ZMachine)
    env: dict[str, str] = {}
    if zdb_port is not None:
        env = zdb_environment(
            item.deployment,
            twin_id=item.ref.twin_id,
            contract_id=item.ref.contract_id,
            host=node_address if machine.network.planetary else None,
            port=zdb_port,
        )
    env.update(image_env)
    env.update(machine.env)
    return env

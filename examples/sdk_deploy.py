"""Deploy a spec file with zgrid's Python SDK, print where each workload runs, destroy it.

    python examples/sdk_deploy.py examples/web-replicas.yaml [--keep]

It uses the current network and identity of $ZGRID_HOME (`zgrid network add`, `zgrid
identity new`), unlocked with $ZGRID_PASSPHRASE or $ZGRID_KEY_FILE. SyncGrid is the
blocking form of zgrid.client.Grid; in async code use Grid with the same methods.
"""

from __future__ import annotations

import sys

from zgrid.client import ClientError, SyncGrid, decimal_text


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    spec = argv[0]
    try:
        with SyncGrid.open() as grid:
            plan = grid.plan(spec)
            print(f"{plan.name}: {decimal_text(plan.price_usd / 10_000_000)} USD per hour")
            view = grid.deploy(spec)  # all of it runs, or nothing is left and this raises
            for workload in view.workloads:
                where = workload.planetary_ip or "-"
                print(
                    f"{workload.name} {workload.type} {workload.state} node {workload.node_id} {where}"
                )
            if "--keep" not in argv:
                cancelled = grid.destroy(view.name)
                print(f"destroyed: contracts {', '.join(map(str, cancelled))}")
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

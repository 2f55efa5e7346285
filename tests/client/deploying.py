"""A deployer's machine for the client's end-to-end tests: a $ZGRID_HOME with an identity
and the grid's network, and the `zgrid` command run in the grid's client host (the one on
yggdrasil, so workloads' planetary addresses answer there).

:meth:`Deployer.run` and :meth:`Deployer.popen` start the console script in the client host;
:meth:`Deployer.json` and the setup run the same command in-process (``zgrid.cli.main``),
which saves a Python start-up each: those commands only talk to the ledger, the hub and the
nodes' results on the ledger, which the test's own network namespace reaches too."""

from __future__ import annotations

import json
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.node.grid import Grid
from tests.processes import ZGRID, zgrid_here
from zgrid.chain import SyncChainClient


@dataclass
class Deployer:
    grid: Grid
    home: Path
    address: str = ""

    def setup(self, *, tokens: int = 1000) -> Deployer:
        self.home.mkdir(parents=True, exist_ok=True)
        created = self.here("identity", "new", "--json")
        assert created.returncode == 0, created.stderr
        self.address = json.loads(created.stdout)["address"]
        added = self.here(
            "network", "add", "test", "--ledger", self.grid.ledger.url, "--hub",
            self.grid.hub.url, "--use",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        funded = self.here("account", "faucet", str(tokens), "--ledger", self.grid.ledger.url)
        assert funded.returncode == 0, funded.stderr
        return self

    def run(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return self.grid.client.exec(
            [ZGRID, *args], timeout=timeout, env={"ZGRID_HOME": str(self.home)}
        )

    def here(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The same command in this process (no new Python: see the module's docstring)."""
        return zgrid_here(*args, home=self.home)

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        return self.grid.client.popen([ZGRID, *args], log, env={"ZGRID_HOME": str(self.home)})

    def json(self, *args: str) -> Any:
        done = self.here(*args, "--json")
        assert done.returncode == 0, f"zgrid {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout)

    def spec(self, name: str, text: str) -> Path:
        path = self.home / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    def twin_id(self) -> int:
        with SyncChainClient(self.grid.ledger.url) as chain:
            twin = chain.twin_of(self.address)
        return 0 if twin is None else int(twin["id"])

    def live_contracts(self) -> list[dict[str, Any]]:
        """This deployer's contracts the ledger has not deleted."""
        twin_id = self.twin_id()
        if not twin_id:
            return []
        with SyncChainClient(self.grid.ledger.url) as chain:
            page = chain.query("contracts", twin_id=twin_id, size=1000)
        return [c for c in page["items"] if c["state"] != "deleted"]

"""The live view of a deploy: one row per workload (rich), or plain lines when not a terminal."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from rich.live import Live
from rich.table import Table
from rich.text import Text

from zgrid.cli.output import err_console

if TYPE_CHECKING:
    from zgrid.client import WorkloadProgress

__all__ = ["ProgressView"]

_STYLE = {"ok": "green", "error": "red", "failed": "red", "init": "yellow"}


class ProgressView:
    """Shows steps and workload states on stderr while a deploy runs."""

    def __init__(self, *, quiet: bool = False) -> None:
        self._quiet = quiet
        self._live_view = err_console.is_terminal and not quiet
        self._live: Live | None = None
        self._rows: Sequence[WorkloadProgress] = ()
        self._shown: dict[str, str] = {}
        self._started = time.monotonic()

    def __enter__(self) -> ProgressView:
        if self._live_view:
            self._live = Live(self._table(), console=err_console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(kind, value, trace)
            self._live = None

    def step(self, text: str) -> None:
        if self._quiet:
            return
        if self._live is not None:
            self._live.console.print(text)
        else:
            err_console.print(text)

    def workloads(self, rows: Sequence[WorkloadProgress]) -> None:
        self._rows = rows
        if self._live is not None:
            self._live.update(self._table())
            return
        if self._quiet:
            return
        for row in rows:  # plain output: one line per change of state
            mark = f"{row.state}:{row.message}"
            if self._shown.get(row.key) != mark:
                self._shown[row.key] = mark
                detail = f" ({row.message})" if row.message else ""
                err_console.print(
                    f"{row.name} ({row.type}) on node {row.node_id}: {row.state}{detail}"
                )

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False, title_justify="left")
        elapsed = time.monotonic() - self._started
        table.title = f"{elapsed:.0f} s"
        for column in ("workload", "type", "node", "contract", "state", "message"):
            table.add_column(column)
        for row in self._rows:
            table.add_row(
                Text(row.name),
                row.type,
                str(row.node_id),
                str(row.contract_id),
                Text(row.state, style=_STYLE.get(row.state, "")),
                Text(row.message),
            )
        return table

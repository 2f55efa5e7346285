"""Fixtures of the fuzz tests: the input counts printed at the end of a run."""

from __future__ import annotations

import pytest

from tests.fuzz.budget import COUNTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COUNTS:
        return
    terminalreporter.section("fuzz inputs run")
    for target, inputs in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{target}: {inputs:,} inputs")

"""The fuzz budget: one round in the short pass, rounds until FUZZ_SECONDS in a long one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.fuzz import budget
from tests.fuzz.budget import fuzz_seconds, keep_running


def _rounds(monkeypatch: pytest.MonkeyPatch) -> tuple[int, float]:
    """Rounds of 0.1 s each on a clock only the rounds move, so load cannot change the count."""
    clock = 100.0
    rounds = 0

    def one_round() -> None:
        nonlocal clock, rounds
        rounds += 1
        clock += 0.1

    monkeypatch.setattr(budget, "time", SimpleNamespace(monotonic=lambda: clock))
    started = clock
    keep_running(one_round)
    return rounds, clock - started


def test_the_short_pass_runs_one_round(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUZZ_SECONDS", raising=False)
    assert _rounds(monkeypatch)[0] == 1


def test_a_long_pass_stops_when_its_seconds_are_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUZZ_SECONDS", "0.35")
    rounds, elapsed = _rounds(monkeypatch)
    assert rounds == 4  # rounds begin at 0, 0.1, 0.2 and 0.3 s; none after 0.35 s
    assert elapsed < 0.5


@pytest.mark.parametrize("text", ["ten", "0", "-5", "1e9"])
def test_a_bad_budget_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("FUZZ_SECONDS", text)
    with pytest.raises(ValueError, match="FUZZ_SECONDS must be"):
        fuzz_seconds()

"""The fuzz budget: one round in the short pass, rounds until FUZZ_SECONDS in a long one."""

from __future__ import annotations

import time

import pytest

from tests.fuzz.budget import fuzz_seconds, keep_running


def _rounds() -> tuple[int, float]:
    rounds = 0

    def one_round() -> None:
        nonlocal rounds
        rounds += 1
        time.sleep(0.1)

    started = time.monotonic()
    keep_running(one_round)
    return rounds, time.monotonic() - started


def test_the_short_pass_runs_one_round(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUZZ_SECONDS", raising=False)
    assert _rounds()[0] == 1


def test_a_long_pass_stops_when_its_seconds_are_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUZZ_SECONDS", "0.35")
    rounds, elapsed = _rounds()
    # Rounds begin at 0, 0.1, 0.2 and 0.3 s (fewer on a slow machine), none after 0.35 s.
    assert 2 <= rounds <= 4
    assert elapsed < 1.0


@pytest.mark.parametrize("text", ["ten", "0", "-5", "1e9"])
def test_a_bad_budget_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("FUZZ_SECONDS", text)
    with pytest.raises(ValueError, match="FUZZ_SECONDS must be"):
        fuzz_seconds()

"""The fuzz budget: a short fixed pass under `make test`, FUZZ_SECONDS per target under `make fuzz`.

Every harness counts the inputs it ran with ``count``; the suite prints the totals at its end
(tests/fuzz/conftest.py), so a long run says how much it tried.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable

from hypothesis import HealthCheck, settings

__all__ = ["COUNTS", "count", "fuzz_seconds", "fuzz_settings", "keep_running"]

COUNTS: Counter[str] = Counter()


def fuzz_seconds() -> float | None:
    """FUZZ_SECONDS as a number of seconds per target, or None for the short pass."""
    text = os.environ.get("FUZZ_SECONDS", "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"FUZZ_SECONDS must be a number of seconds, not {text!r}") from None
    if not 0 < seconds <= 7 * 24 * 3600:
        raise ValueError(f"FUZZ_SECONDS must be between 0 and a week, not {text!r}")
    return seconds


def count(target: str, inputs: int = 1) -> None:
    COUNTS[target] += inputs


def fuzz_settings(short_examples: int) -> settings:
    """Hypothesis settings for one round: ``short_examples`` inputs, no per-input deadline."""
    return settings(
        max_examples=short_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def keep_running(run: Callable[[], None]) -> None:
    """Run one round of a hypothesis test; under FUZZ_SECONDS, rounds with fresh seeds until that
    many seconds have passed since the first began (a round that started goes to its end)."""
    seconds = fuzz_seconds()
    started = time.monotonic()
    run()
    if seconds is None:
        return
    while time.monotonic() < started + seconds:
        run()

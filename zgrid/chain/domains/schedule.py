"""What ledger time makes due, kept by the minute so a block touches only what falls due
in it, never every contract or node.

An item ("bill:7", "farm:3") due at time t goes into the minute that ends at or after t,
in chunks of :data:`CHUNK` entries (``"<minute>:<chunk>"``, with a count per minute): a
block at time T takes every minute up to T's, oldest first, so an item runs in the first
block at or after its minute's end (at most a minute late; a bill charges the seconds that
really passed). Adding is O(1): a chunk is small, and a block that reschedules thousands
of bills into one minute writes a few chunks, not thousands of records. Nothing is ever
unscheduled: an entry carries its due time, and its owner ignores one that no longer
matches its own record (a contract that ended, or was billed when it ended).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from zgrid.chain.records import Counter, ScheduleChunk
from zgrid.chain.tables import LedgerState

__all__ = ["BUCKET_SECONDS", "CHUNK", "Due", "due_items", "schedule", "schedule_many"]

BUCKET_SECONDS = 60
CHUNK = 64  # entries per record
_DONE = "schedule_done"  # counter: the last minute taken (or being taken)


@dataclass(frozen=True, slots=True)
class Due:
    item: str  # "<kind>:<id>"
    due: int  # the ledger time it was scheduled for


def _minute(when: int) -> int:
    return -(-when // BUCKET_SECONDS)


def schedule(state: LedgerState, when: int, item: str) -> None:
    schedule_many(state, [(when, item)])


def schedule_many(state: LedgerState, items: list[tuple[int, str]]) -> None:
    """Schedule each ``(when, item)``, in order; a few writes per minute they fall in."""
    if not items:
        return
    # A time whose minute was already taken goes into the next minute to be taken.
    first = state.counter(_DONE) + 1
    by_minute: dict[int, list[str]] = {}
    for when, item in items:
        by_minute.setdefault(max(_minute(when), first), []).append(f"{item}@{when}")
    for minute, entries in by_minute.items():
        count = state.schedule_counts.get(minute)
        number = 0 if count is None else count.value  # entries so far
        state.schedule_counts.put(minute, Counter.model_construct(value=number + len(entries)))
        start = 0
        while start < len(entries):
            key = f"{minute}:{number // CHUNK}"
            part = entries[start : start + CHUNK - number % CHUNK]
            found = state.schedule.get(key)
            kept = [] if found is None else found.entries
            state.schedule.put(key, ScheduleChunk.model_construct(entries=[*kept, *part]))
            number += len(part)
            start += len(part)


def due_items(state: LedgerState, now: int) -> Iterator[Due]:
    """Take the minutes due by ``now``, yielding their entries in the order scheduled.

    An item scheduled meanwhile for a time already due goes into the minute after the
    one being taken, so it is still taken in this block.
    """
    last = now // BUCKET_SECONDS
    done = state.counter(_DONE)
    # A ledger that never scheduled anything has nothing in the past to take.
    minute = done + 1 if done else last
    while minute <= last:
        count = state.schedule_counts.get(minute)
        if count is not None:
            state.set_counter(_DONE, minute)
            state.schedule_counts.delete(minute)
            for chunk in range(-(-count.value // CHUNK)):
                key = f"{minute}:{chunk}"
                found = state.schedule.get(key)
                if found is None:
                    continue
                state.schedule.delete(key)
                for entry in found.entries:
                    item, _, due = entry.rpartition("@")
                    yield Due(item, int(due))
        minute += 1
    if last > state.counter(_DONE):
        state.set_counter(_DONE, last)

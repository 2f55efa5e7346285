"""What ledger time makes due, kept in buckets of one minute so a block touches only what
falls due in it, never every contract or node.

An item ("bill:7", "farm:3") due at time t sits in the bucket of the minute that ends at
or after t; a block at time T takes every bucket up to T's minute, oldest first, so an
item runs in the first block at or after its bucket's end (at most a minute late; a bill
charges the seconds that really passed). Bucket keys are minute numbers since the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

from zgrid.chain.records import ScheduleBucket
from zgrid.chain.tables import LedgerState

__all__ = ["BUCKET_SECONDS", "due_items", "schedule", "unschedule"]

BUCKET_SECONDS = 60
_DONE = "schedule_done"  # counter: the last minute whose bucket was taken


def _bucket(when: int) -> int:
    return -(-when // BUCKET_SECONDS)


def _key(state: LedgerState, when: int) -> str:
    # A time whose minute was already taken goes into the next bucket to be taken.
    return str(max(_bucket(when), state.counter(_DONE) + 1))


def schedule(state: LedgerState, when: int, item: str) -> None:
    key = _key(state, when)
    found = state.schedule.get(key)
    items = [] if found is None else list(found.items)
    items.append(item)
    state.schedule.put(key, ScheduleBucket(items=items))


def unschedule(state: LedgerState, when: int, item: str) -> None:
    key = _key(state, when)
    found = state.schedule.get(key)
    if found is None or item not in found.items:
        return
    items = [other for other in found.items if other != item]
    if items:
        state.schedule.put(key, ScheduleBucket(items=items))
    else:
        state.schedule.delete(key)


def due_items(state: LedgerState, now: int) -> Iterator[str]:
    """Take the buckets due by ``now``, yielding their items in order.

    Items scheduled while this runs for a minute already taken land in a later bucket
    only if their time is later; one due now goes into the next minute's bucket.
    """
    last = now // BUCKET_SECONDS
    done = state.counter(_DONE)
    # A ledger that never scheduled anything has nothing in the past to take.
    start = done + 1 if done else last
    for minute in range(start, last + 1):
        key = str(minute)
        bucket = state.schedule.get(key)
        if bucket is not None:
            state.schedule.delete(key)
            yield from bucket.items
    if last != done:
        state.set_counter(_DONE, last)

"""Zero-DB's request parser against hiredis's reader, on the same pipelined streams.

Three streams of 16 pipelined commands (SET of 100 bytes, GET, SET of 4 KiB random
bytes), each parsed many times by zgrid's RequestParser and by hiredis.Reader (the C
parser redis-py uses, with none of 0-db's checks); prints microseconds per command
for each and the ratio hiredis/zgrid (1.0: as fast as hiredis). No server, no socket:
this is the cost of reading requests alone.
Usage: python bench/zdb_parser.py [--seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import hiredis

from zgrid.zdb.resp import RequestParser

PIPELINE = 16


def request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


STREAMS = {
    "SET 100 B": request(b"SET", b"key:000000000001", b"x" * 100) * PIPELINE,
    "GET": request(b"GET", b"key:000000000001") * PIPELINE,
    "SET 4 KiB": request(b"SET", b"key:000000000001", os.urandom(4096)) * PIPELINE,
}


def per_command(parse: Callable[[], object], seconds: float) -> float:
    """Best microseconds per command over rounds of ``seconds`` / 5."""
    best = float("inf")
    for _ in range(5):
        rounds = 0
        started = time.perf_counter()
        deadline = started + seconds / 5
        while time.perf_counter() < deadline:
            for _ in range(100):
                parse()
            rounds += 100
        best = min(best, (time.perf_counter() - started) / rounds / PIPELINE * 1e6)
    return best


def zgrid_parser(stream: bytes) -> Callable[[], object]:
    parser = RequestParser()
    return lambda: parser.feed(stream)


def hiredis_parser(stream: bytes) -> Callable[[], object]:
    reader = hiredis.Reader()

    def parse() -> list[object]:
        reader.feed(stream)
        commands = []
        while (command := reader.gets()) is not False:
            commands.append(command)
        return commands

    return parse


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=2.0, help="time per parser and stream")
    options.add_argument("--json", action="store_true", help="print the results as JSON")
    arguments = options.parse_args()
    rows = []
    for name, stream in STREAMS.items():
        assert len(zgrid_parser(stream)()) == len(hiredis_parser(stream)()) == PIPELINE  # type: ignore[arg-type]
        ours = per_command(zgrid_parser(stream), arguments.seconds)
        peer = per_command(hiredis_parser(stream), arguments.seconds)
        rows.append(
            {
                "stream": name,
                "zgrid_us": round(ours, 3),
                "hiredis_us": round(peer, 3),
                "ratio": round(peer / ours, 3),
            }
        )
    if arguments.json:
        print(json.dumps({"pipeline": PIPELINE, "results": rows}))
        return
    print(f"{'stream':<10} {'zgrid µs/cmd':>13} {'hiredis µs/cmd':>15} {'hiredis/zgrid':>14}")
    for row in rows:
        print(
            f"{row['stream']:<10} {row['zgrid_us']:>13.2f} {row['hiredis_us']:>15.2f} {row['ratio']:>14.2f}"
        )


if __name__ == "__main__":
    main()

"""A PlanetaryNetwork driven from a test, running inside a host's netns as a node would.

Started once per host (``python -m tests.node.net.planetary_agent CONFIG``); it reads
one JSON request a line and answers one JSON line. Each request runs in a forked child
with fresh objects (as a restarted node has), so a request may ask to be killed -9 right
after its N-th system command (``crash_after``) to leave the work half done.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from zgrid.node.net import PlanetaryNetwork, Yggdrasil, links
from zgrid.node.primitives.base import WorkloadRef


def _count_commands(crash_after: int | None) -> list[int]:
    """Wrap the runner `links` calls so it counts, and dies -9 after ``crash_after``."""
    counter = [0]
    namespace = vars(links)  # the runner links' functions look up at each call
    real: Callable[..., Awaitable[str]] = namespace["run_command"]

    async def counted(argv: Sequence[str], **kwargs: Any) -> str:
        if crash_after is not None and counter[0] >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)
        counter[0] += 1
        return await real(argv, **kwargs)

    namespace["run_command"] = counted
    return counter


async def _serve(config: dict[str, Any], request: dict[str, Any]) -> Any:
    ygg = Yggdrasil(
        Path(config["ygg_root"]),
        scope=config["ygg_scope"],
        listen=config["listen"],
        peers=config["peers"],
    )
    network = PlanetaryNetwork(ygg, Path(config["root"]), scope=config["scope"])
    op = request["op"]
    if op == "present":
        return sorted(await network.present())
    ref = WorkloadRef(*request["ref"])
    if op == "attach":
        attached = await network.attach(
            ref, contract_key=request["contract_key"], planetary=request["planetary"]
        )
        return {"netns": attached.netns, "path": str(attached.netns_path), "ipv6": attached.ipv6}
    if op == "detach":
        await network.detach(ref)
        return None
    if op == "inspect":
        return await network.inspect(ref)
    raise ValueError(f"unknown op {op!r}")


def _child(config: dict[str, Any], request: dict[str, Any], reply: int) -> None:
    """Answer ``request`` with its result, the system commands it ran and its duration."""
    counter = _count_commands(request.get("crash_after"))
    started = time.monotonic()
    try:
        answer = {"result": asyncio.run(_serve(config, request))}
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answer.update(commands=counter[0], seconds=round(time.monotonic() - started, 4))
    os.write(reply, json.dumps(answer).encode())
    os._exit(0)


def main() -> None:
    config = json.loads(sys.argv[1])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(config, request, write_end)
        os.close(write_end)
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            answer = {"killed": os.WTERMSIG(status)}
        else:
            answer = json.loads(b"".join(chunks) or b'{"error": "no answer"}')
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

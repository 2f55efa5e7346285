"""The --hook executable: 0-db's event names and arguments, run without a shell.

Blocking hooks are waited for (their exit status matters); the others run in
the background and are reaped later. Every run is listed by HOOKS for 300 s.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

__all__ = ["HookRun", "Hooks"]

_EXPIRE = 300.0


@dataclass
class HookRun:
    name: str
    arguments: list[str]
    pid: int
    started: int
    finished: int = 0
    status: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


class Hooks:
    """Runs ``executable <event> <instance id> <arguments...>`` for each event."""

    def __init__(self, executable: str | None, instance_id: str) -> None:
        self.executable = executable
        self.instance_id = instance_id
        self.runs: list[HookRun] = []

    def fire(self, event: str, *arguments: str, wait: bool = False) -> int:
        """Start the hook; with ``wait`` return its exit status, otherwise 0."""
        if not self.executable:
            return 0
        self.reap()
        run = HookRun(event, list(arguments), 0, int(time.time()))
        try:
            process = subprocess.Popen([self.executable, event, self.instance_id, *arguments])
        except OSError:
            run.finished, run.status = int(time.time()), 127
            self.runs.append(run)
            return 127
        run.pid, run.process = process.pid, process
        self.runs.append(run)
        if wait:
            run.status = process.wait()
            run.finished = int(time.time())
            run.process = None
            return run.status
        return 0

    def reap(self) -> None:
        now = time.time()
        for run in self.runs:
            if run.process is not None and run.process.poll() is not None:
                run.status = run.process.returncode
                run.finished = int(now)
                run.process = None
        self.runs = [run for run in self.runs if not run.finished or now - run.finished < _EXPIRE]

    def wait_all(self, timeout: float = 5.0) -> None:
        for run in self.runs:
            if run.process is not None:
                try:
                    run.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    continue
        self.reap()

"""Coverage-guided fuzzing of one harness with atheris (libFuzzer), as its own process.

``python -m tests.fuzz.atheris_run TARGET [libFuzzer arguments]``; TARGET is a name of
``TARGETS``: the module holding ``one_input(data: bytes)`` and the zgrid modules to
instrument. ``run_atheris`` starts it with a time budget on a copy of the target's
corpus and returns how many inputs ran; a crash fails with the input that caused it.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import atheris

__all__ = ["CORPUS", "TARGETS", "AtherisCrash", "run_atheris"]

CORPUS = Path(__file__).parent / "corpus"

# target name -> (harness module, zgrid modules whose branches guide the fuzzer)
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "resp": ("tests.fuzz.resp_target", ("zgrid.zdb.resp",)),
    "flist": ("tests.fuzz.flist_target", ("zgrid.flist",)),
}

_EXECUTED = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")


class AtherisCrash(AssertionError):
    """The fuzzer found an input the harness refuses; the message names the saved input."""


def run_atheris(target: str, *, seconds: float, work: Path) -> int:
    """Fuzz ``target`` for ``seconds``; the number of inputs run. Raises AtherisCrash."""
    corpus = work / "corpus"
    shutil.copytree(CORPUS / target, corpus, dirs_exist_ok=True)
    artifacts = work / "crashes"
    artifacts.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.atheris_run",
        target,
        f"-max_total_time={max(1, round(seconds))}",
        "-print_final_stats=1",
        "-rss_limit_mb=2048",
        "-timeout=10",
        f"-artifact_prefix={artifacts}/",
        str(corpus),
    ]
    finished = subprocess.run(
        command,
        capture_output=True,
        timeout=seconds + 120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    if finished.returncode != 0:
        saved = sorted(str(path) for path in artifacts.iterdir())
        tail = finished.stderr[-4000:].decode(errors="replace")
        raise AtherisCrash(f"atheris found a failing input for {target}: {saved}\n{tail}")
    executed = _EXECUTED.search(finished.stderr)
    return int(executed.group(1)) if executed else 0


def main(arguments: list[str]) -> None:
    if not arguments or arguments[0] not in TARGETS:
        sys.exit(
            f"usage: python -m tests.fuzz.atheris_run {{{','.join(sorted(TARGETS))}}} [libFuzzer args]"
        )
    harness, instrumented = TARGETS[arguments[0]]
    with atheris.instrument_imports(include=list(instrumented)):
        for module in instrumented:
            importlib.import_module(module)
    one_input = importlib.import_module(harness).one_input
    atheris.Setup([sys.argv[0], *arguments[1:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])

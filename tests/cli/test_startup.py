"""`zgrid --help` and the light commands start without the web frameworks the servers use.

Each case runs in a fresh interpreter, so the modules it loaded are exactly the ones the
command line needed (this test process has imported everything already).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "uvicorn", "starlette")

_PROBE = """
import json, sys
from zgrid.cli import main
code = main(sys.argv[1:])
heavy = sorted({name.partition(".")[0] for name in sys.modules} & set(json.loads(HEAVY)))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.__stderr__)
"""


def _loaded(args: list[str], home: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZGRID_HOME": str(home)}
    probe = _PROBE.replace("HEAVY", repr(json.dumps(HEAVY)))
    result = subprocess.run(
        [sys.executable, "-c", probe, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    last = result.stderr.strip().splitlines()[-1]
    report: dict[str, object] = json.loads(last)
    return report


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["identity", "--help"],
        ["identity", "new"],
        ["account", "balance", "--help"],
        ["flist", "--help"],
        ["hub", "run", "--help"],
        ["chain", "run", "--help"],
        ["zdb", "run", "--help"],
        ["node", "--help"],
    ],
    ids=" ".join,
)
def test_light_commands_load_no_web_framework(args: list[str], tmp_path: Path) -> None:
    report = _loaded(args, tmp_path / "home")
    assert report == {"code": 0, "heavy": []}

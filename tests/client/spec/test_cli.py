"""`zgrid spec check|schema`: exit codes, one line per problem, JSON, and a light start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.processes import run_zgrid
from zgrid.cli import main

ROOT = Path(__file__).resolve().parents[3]

VALID = """\
name: app
machines:
  - {name: web, flist: busybox, memory: 1GiB, replicas: 2, disks: [{disk: data, mountpoint: /d}]}
disks: [{name: data, size: 2GiB}]
zdbs: [{name: store, size: 1GiB}]
"""

INVALID = """\
name: app
machines:
  - name: web
    flist: busybox
    memory: 2GB2
    colour: blue
  - name: web
    flist: busybox
"""


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(VALID, encoding="utf-8")
    return path


@pytest.fixture
def invalid(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(INVALID, encoding="utf-8")
    return path


def test_valid_spec_prints_a_summary(valid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check", str(valid)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (
        "valid spec app: 1 machine(s), 2 replica(s), 1 disk(s), 1 zdb(s); cpu 2, "
        "memory 2 GiB, ssd 5096 MiB, hdd 1 GiB\n"  # roots: the smallest, 500 MiB each
    )


def test_invalid_spec_prints_every_problem(
    invalid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["spec", "check", str(invalid)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{invalid}:5:13: machines[0].memory: bad memory unit 'GB2' (use one of B, KB, MB, GB, "
        "TB, PB, KiB, MiB, GiB, TiB, PiB)",
        f"{invalid}:6:5: machines[0].colour: unknown field 'colour' (known: cpu, disk, disks, "
        "entrypoint, env, flist, memory, mode, name, placement, planetary, public_ipv4, public_ipv6, replicas, ssh_keys)",
        f"{invalid}:7:11: machines[1].name: duplicate name 'web': machine machines[0] has it "
        "already (names are unique across machines, disks and zdbs)",
    ]


def test_json_report(valid: Path, invalid: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check", str(valid), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert report["problems"] == []
    assert report["summary"] == {
        "name": "app",
        "machines": 1,
        "replicas": 2,
        "disks": 1,
        "zdbs": 1,
        "cpu": 2,
        "memory": 2 * 2**30,
        "ssd": 2 * 500 * 2**20 + 2 * 2 * 2**30,
        "hdd": 2**30,
    }
    assert main(["spec", "check", str(invalid), "--json"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["valid"] is False
    assert report["summary"] is None
    assert report["problems"][0] == {
        "line": 5,
        "column": 13,
        "path": "machines[0].memory",
        "message": "bad memory unit 'GB2' (use one of B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)",
    }
    assert [(p["line"], p["column"]) for p in report["problems"]] == [(5, 13), (6, 5), (7, 11)]


def test_missing_file_is_a_problem_at_1_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["spec", "check", str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"{missing}:1:1: cannot read the file: No such file or directory\n"
    )


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check"]) == 2
    assert main(["spec", "check", "a.yaml", "--jsn"]) == 2


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json.loads(
        (ROOT / "zgrid" / "client" / "spec" / "spec.schema.json").read_text(encoding="utf-8")
    )


def test_the_command_exits_as_documented(valid: Path, invalid: Path) -> None:
    ok = run_zgrid("spec", "check", str(valid))
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith("valid spec app: ")
    bad = run_zgrid("spec", "check", str(invalid))
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 3
    assert run_zgrid("spec", "check").returncode == 2


@pytest.mark.parametrize("args", [["spec", "--help"], ["spec", "check", "--help"]], ids=" ".join)
def test_help_does_not_load_the_checker(args: list[str]) -> None:
    probe = (
        "import sys\n"
        "from zgrid.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "loaded = sorted({'yaml', 'jsonschema', 'zgrid.client'} & set(sys.modules))\n"
        "print(code, loaded, file=sys.__stderr__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.stderr.strip().splitlines()[-1] == "0 []"

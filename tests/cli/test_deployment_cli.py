"""`zgrid deployment check|sign` with a real identity and the example document."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zgrid.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deployment.json"


@pytest.fixture
def signed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    home = tmp_path / "home"
    assert main(["--home", str(home), "identity", "new", "--json"]) == 0
    address = json.loads(capsys.readouterr().out)["address"]
    document = tmp_path / "deployment.json"
    shutil.copy(EXAMPLE, document)
    assert main(["--home", str(home), "deployment", "sign", str(document), "--twin-id", "1"]) == 0
    capsys.readouterr()
    return document, address


def test_check_reports_hash_and_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deployment", "check", str(EXAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["hash"]) == 64
    assert report["capacity"] == {
        "cru": 2,
        "mru": 2 * 2**30,
        "sru": 12 * 2**30,
        "hru": 2**30,
        "ipv4": 0,
    }
    assert report["signature_weight"] is None


def test_signed_document_verifies(
    signed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    document, address = signed
    assert main(["deployment", "check", str(document), "--signer", f"1={address}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["signature_weight"] == 1


def test_tampered_document_is_refused(
    signed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    document, address = signed
    body = json.loads(document.read_text())
    body["workloads"][0]["data"]["size"] *= 2
    document.write_text(json.dumps(body))
    assert main(["deployment", "check", str(document), "--signer", f"1={address}"]) == 1
    assert "does not verify" in capsys.readouterr().err


def test_invalid_document_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.loads(EXAMPLE.read_text())
    body["workloads"][3]["data"]["compute_capacity"]["cpu"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(body))
    assert main(["deployment", "check", str(path)]) == 1
    assert "workloads[3].data.compute_capacity.cpu" in capsys.readouterr().err


@pytest.mark.parametrize("signer", ["1", "x=ab", "1=abcd"])
def test_bad_signer_option(signer: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deployment", "check", str(EXAMPLE), "--signer", signer]) in (1, 2)
    assert "Traceback" not in capsys.readouterr().err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deployment", "check", str(tmp_path / "nope.json")]) == 1
    assert "cannot read" in capsys.readouterr().err

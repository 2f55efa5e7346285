"""`zgrid deployment check|sign` with real identities, the example document and a dev ledger."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chain.conftest import running_ledger
from zgrid.chain import UNITS_PER_TOKEN, SyncChainClient
from zgrid.cli import main
from zgrid.identity import new_mnemonic, save_identity

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


# Against the signers' keys on a real ledger, as the node will check them.


@dataclass(frozen=True)
class Twins:
    """A dev ledger with two twins: 1 (identity in ``homes[1]``) and 2 (``homes[2]``)."""

    url: str
    homes: dict[int, Path]
    addresses: dict[int, str]


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    directory = tmp_path_factory.mktemp("ledger")
    with running_ledger(directory) as ledger:
        homes: dict[int, Path] = {}
        addresses: dict[int, str] = {}
        for expected in (1, 2):
            home = directory / f"home{expected}"
            identity = save_identity(home, new_mnemonic()).identity
            with SyncChainClient(ledger.url, identity=identity) as client:
                client.faucet(10 * UNITS_PER_TOKEN)  # pays for the twin where a fee is due
                assert client.create_twin("") == expected
            homes[expected], addresses[expected] = home, identity.address
        yield Twins(ledger.url, homes, addresses)


def _sign(document: Path, twin_id: int, home: Path) -> None:
    assert (
        main(["--home", str(home), "deployment", "sign", str(document), "--twin-id", str(twin_id)])
        == 0
    )


def _two_signers(tmp_path: Path) -> Path:
    body = json.loads(EXAMPLE.read_text())
    body["signature_requirement"] = {
        "requests": [
            {"twin_id": 1, "required": True, "weight": 1},
            {"twin_id": 2, "required": True, "weight": 1},
        ],
        "weight_required": 2,
    }
    document = tmp_path / "deployment.json"
    document.write_text(json.dumps(body))
    return document


def test_ledger_keys_verify_every_signer(
    twins: Twins, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _two_signers(tmp_path)
    _sign(document, 1, twins.homes[1])
    _sign(document, 2, twins.homes[2])
    capsys.readouterr()
    assert main(["deployment", "check", str(document), "--ledger", twins.url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["signature_weight"] == report["weight_required"] == 2
    assert report["verified_against"] == "ledger"
    assert report["ledger"] == twins.url
    assert report["signed_by"] == [1, 2]
    assert main(["deployment", "check", str(document), "--ledger", twins.url]) == 0
    assert f"signatures verified against the ledger at {twins.url}" in capsys.readouterr().out


def test_a_signature_by_the_wrong_key_names_the_twin(
    twins: Twins, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _two_signers(tmp_path)
    _sign(document, 1, twins.homes[1])
    _sign(document, 2, twins.homes[1])  # twin 1's key claiming to be twin 2
    capsys.readouterr()
    assert main(["deployment", "check", str(document), "--ledger", twins.url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "signature of twin 2 does not verify" in err
    # Offline, the key given by hand is what counts: that is why the ledger is the default.
    offline = ["--signer", f"1={twins.addresses[1]}", "--signer", f"2={twins.addresses[1]}"]
    assert main(["deployment", "check", str(document), *offline, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified_against"] == "offline"


def test_ledger_from_the_environment(
    twins: Twins,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = tmp_path / "deployment.json"
    shutil.copy(EXAMPLE, document)
    _sign(document, 1, twins.homes[1])
    body = json.loads(document.read_text())
    body["workloads"][0]["data"]["size"] *= 2
    document.write_text(json.dumps(body))
    capsys.readouterr()
    monkeypatch.setenv("ZGRID_LEDGER", twins.url)
    assert main(["deployment", "check", str(document)]) == 1
    assert "signature of twin 1 does not verify" in capsys.readouterr().err
    # --signer on the command line still means offline, whatever the environment says.
    assert main(["deployment", "check", str(document), "--signer", f"1={twins.addresses[1]}"]) == 1
    assert "signature of twin 1 does not verify" in capsys.readouterr().err


def test_a_requested_twin_missing_from_the_ledger(
    twins: Twins, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.loads(EXAMPLE.read_text())
    body["signature_requirement"]["requests"].append(
        {"twin_id": 99, "required": False, "weight": 1}
    )
    document = tmp_path / "deployment.json"
    document.write_text(json.dumps(body))
    _sign(document, 1, twins.homes[1])
    capsys.readouterr()
    assert main(["deployment", "check", str(document), "--ledger", twins.url]) == 1
    err = capsys.readouterr().err
    assert "twin 99, named in the deployment's signature requirement, is not on the ledger" in err
    assert len(err.strip().splitlines()) == 1


def test_unsigned_check_says_it_did_not_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deployment", "check", str(EXAMPLE)]) == 0
    assert "signatures NOT verified" in capsys.readouterr().out


def test_ledger_and_signer_together_is_wrong_usage(
    twins: Twins, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--ledger", twins.url, "--signer", f"1={twins.addresses[1]}"]
    assert main(["deployment", "check", str(EXAMPLE), *args]) == 2
    assert "either --ledger" in capsys.readouterr().err


def test_a_document_that_is_not_json_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b"\x9d\xff\x00")
    assert main(["deployment", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not UTF-8")
    assert "$" not in err

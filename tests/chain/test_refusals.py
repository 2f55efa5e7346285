"""Every kind of refusal, through a real ledger process, with the error text the user sees."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.chain.conftest import ClientFactory, LedgerProcess, refused
from zgrid.chain import (
    UNITS_PER_TOKEN,
    RejectCode,
    SignedTransaction,
    sign_transaction,
)
from zgrid.identity import Identity

TOKEN = UNITS_PER_TOKEN


def test_bad_signature(shared_clients: ClientFactory) -> None:
    client = shared_clients(10)
    tx = client.sign("accounts.transfer", {"to": "ab" * 32, "amount": 1})
    forged = SignedTransaction(
        body=tx.body, signature=("00" if tx.signature[:2] != "00" else "11") + tx.signature[2:]
    )
    message = refused(RejectCode.BAD_SIGNATURE, lambda: client.submit_signed(forged))
    assert message == "signature does not match the signer and the body"


def test_signature_of_another_key(shared_clients: ClientFactory) -> None:
    client = shared_clients(10)
    tx = client.sign("accounts.transfer", {"to": "ab" * 32, "amount": 1})
    other = Identity(secrets.token_bytes(32))
    stolen = SignedTransaction(body=tx.body, signature=other.sign(tx.body.digest).hex())
    assert "signature does not match" in refused(
        RejectCode.BAD_SIGNATURE, lambda: client.submit_signed(stolen)
    )


def test_wrong_chain_id(shared_clients: ClientFactory) -> None:
    client = shared_clients(0)
    tx = sign_transaction(
        client.identity, chain_id="zgrid-main", nonce=0, call="twins.create", args={}
    )
    message = refused(RejectCode.WRONG_CHAIN, lambda: client.submit_signed(tx))
    assert message == "transaction is for chain 'zgrid-main', this is 'zgrid-dev'"


def test_replayed_transaction_is_refused(shared_clients: ClientFactory) -> None:
    client = shared_clients(10)
    tx = client.sign("accounts.transfer", {"to": "cd" * 32, "amount": TOKEN})
    assert client.submit_signed(tx)["status"] == "included"
    message = refused(RejectCode.BAD_NONCE, lambda: client.submit_signed(tx))
    assert message == "nonce 1 was already used; the account's next nonce is 2"
    assert client.account("cd" * 32)["free"] == TOKEN  # paid once, whatever the replays


def test_nonce_from_the_future(shared_clients: ClientFactory) -> None:
    client = shared_clients(10)
    tx = sign_transaction(
        client.identity, chain_id="zgrid-dev", nonce=7, call="twins.create", args={}
    )
    message = refused(RejectCode.BAD_NONCE, lambda: client.submit_signed(tx))
    assert message == "nonce 7 is not the next one; the account's next nonce is 1"


def test_unknown_call(shared_clients: ClientFactory) -> None:
    client = shared_clients(0)
    message = refused(
        RejectCode.UNKNOWN_CALL, lambda: client.submit("accounts.mint", {"amount": 5})
    )
    assert message.startswith(
        "unknown call 'accounts.mint' (known: accounts.faucet, accounts.transfer,"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            {"to": "ab" * 32, "amount": 0},
            "invalid args for accounts.transfer: amount: Input should be greater than 0",
        ),
        (
            {"to": "ab" * 32, "amount": "5"},
            "invalid args for accounts.transfer: amount: Input should be a valid integer",
        ),
        (
            {"to": "nobody", "amount": 5},
            "invalid args for accounts.transfer: to: String should match pattern",
        ),
        ({"amount": 5}, "invalid args for accounts.transfer: to: Field required"),
        (
            {"to": "ab" * 32, "amount": 5, "memo": "x"},
            "invalid args for accounts.transfer: memo: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_args(
    shared_clients: ClientFactory, args: dict[str, object], expected: str
) -> None:
    client = shared_clients(1)
    assert refused(
        RejectCode.INVALID_ARGS, lambda: client.submit("accounts.transfer", args)
    ).startswith(expected)


def test_insufficient_balance(shared_clients: ClientFactory) -> None:
    client = shared_clients(1)
    message = refused(
        RejectCode.INSUFFICIENT_BALANCE, lambda: client.transfer("ef" * 32, 5 * TOKEN)
    )
    assert message == (
        "free balance 1 is less than the 5.001 tokens needed (5 and the 0.001 token fee)"
    )
    assert client.account(client.identity.address)["free"] == TOKEN


def test_a_refused_transaction_changes_nothing(shared_clients: ClientFactory) -> None:
    client = shared_clients(3)
    before = client.account(client.identity.address)
    refused(RejectCode.INSUFFICIENT_BALANCE, lambda: client.transfer("ef" * 32, 50 * TOKEN))
    assert client.account(client.identity.address) == before
    assert client.transfer("ef" * 32, TOKEN)["status"] == "included"  # the nonce was not used up


def test_non_node_cannot_report_a_result(shared_clients: ClientFactory) -> None:
    deployer = shared_clients(5)
    twin_id = deployer.create_twin()
    message = refused(
        RejectCode.FORBIDDEN,
        lambda: deployer.submit(
            "contracts.report_result", {"contract_id": 1, "version": 0, "sealed_results": "AAAA"}
        ),
    )
    assert message == f"twin {twin_id} is not a node"


def test_no_twin_no_farm(shared_clients: ClientFactory) -> None:
    client = shared_clients(1)
    message = refused(RejectCode.FORBIDDEN, lambda: client.create_farm("lonely"))
    assert message.endswith("has no twin; create one with `zgrid twin create`")


def test_only_the_owner_changes_a_farm(shared_clients: ClientFactory) -> None:
    owner, other = shared_clients(1), shared_clients(1)
    owner.create_twin()
    other.create_twin()
    farm_id = owner.create_farm(f"owned-{secrets.token_hex(3)}")
    message = refused(
        RejectCode.FORBIDDEN, lambda: other.add_farm_ip(farm_id, "185.1.2.3/24", "185.1.2.1")
    )
    assert message.startswith(f"only the owner of farm {farm_id}")


def test_malformed_bodies(shared_ledger: LedgerProcess) -> None:
    cases = [
        (b"{", "body is not acceptable JSON"),
        (b'{"body": {}, "signature": 1.5}', "floats are not allowed"),
        (b'{"body": {"chain_id": "zgrid-dev"}, "signature": "00"}', "body.signer: Field required"),
        (b"[]", "transaction: Input should be a valid dictionary"),
    ]
    for body, fragment in cases:
        response = httpx.post(
            f"{shared_ledger.url}/transactions",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["code"] == "malformed"
        assert fragment in error["message"], (body, error)

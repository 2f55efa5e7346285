"""Hostile requests get a 400 or 404 with the one error body, never a 500, from a running ledger."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from tests.chain.conftest import LedgerProcess
from zgrid.identity import Identity

BIG = str(2**63)
HUGE = "9" * 5000


@pytest.mark.parametrize(
    "path",
    [
        f"/blocks/{BIG}",
        f"/blocks/{HUGE}",
        f"/blocks?start={BIG}",
        f"/twins/{BIG}",
        f"/farms/{HUGE}",
        f"/nodes/{BIG}",
        f"/contracts/{BIG}",
        f"/nodes?free_mru={BIG}",
        f"/nodes?farm_id={HUGE}",
        f"/contracts?twin_id={BIG}",
        f"/twins?page={BIG}",
        f"/events?after={BIG}-0",
        f"/events?after=0-{BIG}",
        f"/events?after={HUGE}-0",
        f"/events/stream?from_height={BIG}",
        "/transactions/%ED%A0%80",
        "/twins?account=%ED%A0%80",
        "/farms?name=%ED%A0%80",
    ],
)
def test_hostile_paths_and_queries(shared_ledger: LedgerProcess, path: str) -> None:
    response = httpx.get(f"{shared_ledger.url}{path}", timeout=10)
    assert response.status_code in (200, 400, 404), (response.status_code, response.text)
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"code", "message"} and error["message"]


def test_a_huge_last_event_id_is_refused(shared_ledger: LedgerProcess) -> None:
    response = httpx.get(
        f"{shared_ledger.url}/events/stream", headers={"Last-Event-ID": f"{BIG}-0"}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"


U64_PAST = str(2**64)
NEGATIVE = "-2"


@pytest.mark.parametrize(
    ("path", "headers", "named"),
    [
        (f"/blocks?start={U64_PAST}", {}, "query.start"),
        (f"/blocks?start={NEGATIVE}", {}, "query.start"),
        (f"/blocks?start={HUGE}", {}, "query.start"),
        (f"/blocks/{U64_PAST}", {}, "path.height"),
        (f"/blocks/{NEGATIVE}", {}, "path.height"),
        (f"/events?after={U64_PAST}-0", {}, "query.after"),
        (f"/events?after=0-{U64_PAST}", {}, "query.after"),
        (f"/events?after={HUGE}-{HUGE}", {}, "query.after"),
        (f"/events?after=0-{NEGATIVE}", {}, "query.after"),
        ("/events?after=1_0-0", {}, "query.after"),
        ("/events?after=%D9%A3-0", {}, "query.after"),  # an Arabic-Indic digit three
        ("/events?after=+1-0", {}, "query.after"),
        ("/events?after=01-0", {}, "query.after"),
        (f"/events/stream?from_height={U64_PAST}", {}, "query.from_height"),
        (f"/events/stream?from_height={NEGATIVE}", {}, "query.from_height"),
        ("/events/stream", {"Last-Event-ID": f"{U64_PAST}-0"}, "header.last-event-id"),
        ("/events/stream", {"Last-Event-ID": f"0-{U64_PAST}"}, "header.last-event-id"),
        ("/events/stream", {"Last-Event-ID": f"{HUGE}-0"}, "header.last-event-id"),
        ("/events/stream", {"Last-Event-ID": f"0-{NEGATIVE}"}, "header.last-event-id"),
        ("/events/stream", {"Last-Event-ID": "1_0-0"}, "header.last-event-id"),
        ("/events/stream", {"Last-Event-ID": "null"}, "header.last-event-id"),
    ],
)
def test_numbers_out_of_range_are_400_naming_the_parameter(
    shared_ledger: LedgerProcess, path: str, headers: dict[str, str], named: str
) -> None:
    with httpx.stream("GET", f"{shared_ledger.url}{path}", headers=headers, timeout=10) as answer:
        # An accepted stream never ends: judge it by its headers before reading on.
        assert answer.status_code == 400, (path, headers, answer.headers)
        body = answer.read()
    assert answer.headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    assert error["message"].startswith(named), error


def _transaction(args_json: str, chain_id: str = "zgrid-dev") -> bytes:
    signer = Identity(secrets.token_bytes(32)).address
    return (
        f'{{"body":{{"chain_id":"{chain_id}","signer":"{signer}","nonce":0,'
        f'"call":"accounts.transfer","args":{args_json}}},"signature":"{"00" * 64}"}}'
    ).encode()


HOSTILE_BODIES = {
    "integer over 4300 digits": _transaction(f'{{"amount":{HUGE}}}'),
    "integer past 64 bits": _transaction(f'{{"amount":{2**70}}}'),
    "args nested hundreds deep": _transaction('{"to":' + "[" * 300 + "]" * 300 + "}"),
    "objects nested hundreds deep": _transaction('{"to":' + '{"a":' * 300 + "1" + "}" * 301),
    "lone surrogate in args": _transaction('{"to":"\\ud800"}'),
    "lone surrogate in a key": _transaction('{"\\udc00":1}'),
    "lone surrogate in the chain id": _transaction("{}", chain_id="zgrid-dev\\udfff"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_transaction_bodies(shared_ledger: LedgerProcess, name: str) -> None:
    body = HOSTILE_BODIES[name]
    single = httpx.post(f"{shared_ledger.url}/transactions", content=body, timeout=10)
    assert single.status_code == 400, (name, single.text)
    assert single.json()["error"]["code"] == "malformed"
    batch = httpx.post(
        f"{shared_ledger.url}/transactions/batch", content=b"[" + body + b"]", timeout=10
    )
    assert batch.status_code in (200, 400), (name, batch.text)
    document = batch.json()
    error = document[0]["error"] if batch.status_code == 200 else document["error"]
    assert error["code"] == "malformed", (name, error)
    # The ledger still produces blocks and answers afterwards.
    assert httpx.get(f"{shared_ledger.url}/chain/head", timeout=10).status_code == 200


def test_a_batch_nested_thousands_deep_is_refused(shared_ledger: LedgerProcess) -> None:
    body = b"[" * 5000 + b"]" * 5000
    response = httpx.post(f"{shared_ledger.url}/transactions/batch", content=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"


def test_a_large_body_is_read_not_refused_as_headers(shared_ledger: LedgerProcess) -> None:
    # Headers and body arrive together; only the headers count against the header limit.
    padding = {"to": "ab" * 32, "amount": 1, "memo": "x" * 100_000}
    body = json.dumps(
        {
            "body": {
                "chain_id": "zgrid-dev",
                "signer": "cd" * 32,
                "nonce": 0,
                "call": "accounts.transfer",
                "args": padding,
            },
            "signature": "00" * 64,
        }
    ).encode()
    response = httpx.post(f"{shared_ledger.url}/transactions", content=body, timeout=10)
    assert response.status_code == 400, response.text
    assert "error" in response.json()

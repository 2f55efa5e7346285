"""Schemathesis against a running ledger: every operation of its OpenAPI, valid and
invalid inputs, all standard checks. Transaction bodies are signed by a funded test
identity, so generated calls reach the state machine."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation as AnyOperation

from tests.chain.conftest import LedgerProcess, running_ledger
from tests.fuzz.budget import count, fuzz_seconds, fuzz_settings, keep_running
from tests.fuzz.signing import resign
from zgrid.chain import UNITS_PER_TOKEN, SyncChainClient
from zgrid.identity import Identity

Operation = AnyOperation[Any, Any, Any, Any]
SHORT_EXAMPLES = 4  # per operation and mode in the short pass
LONG_EXAMPLES = 20  # per operation and mode in each round of a long pass (a round: 2-3 min)
STREAM = "/events/stream"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerProcess]:
    with running_ledger(tmp_path_factory.mktemp("fuzz-ledger")) as process:
        yield process


@pytest.fixture(scope="module")
def identity(ledger: LedgerProcess) -> Identity:
    """A test identity with funds from the dev faucet, a twin and a farm."""
    identity = Identity(secrets.token_bytes(32))
    with SyncChainClient(ledger.url, identity=identity) as client:
        client.faucet(500 * UNITS_PER_TOKEN)
        client.create_twin("relay.example.org")
        client.create_farm(f"fuzz-{identity.address[:8]}")
    return identity


# A well-formed, signed transaction the state machine refuses (no funds, unknown call,
# no such twin ...) is answered 400 with the refusal's code: valid data, refused.
CONFIG = """
[[operations]]
include-name = ["POST /transactions", "POST /transactions/batch"]
checks.positive_data_acceptance.expected-statuses = ["2XX", 400]
"""


def _operations(url: str) -> list[Operation]:
    config = SchemathesisConfig.from_str(CONFIG)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation schemathesis cannot read
        operations.append(result.ok())
    return operations


def _modes(operation: Operation) -> list[GenerationMode]:
    """Invalid inputs only where there is something to make invalid."""
    inputs = [operation.path_parameters, operation.query, operation.headers, operation.body]
    if any(len(part) for part in inputs):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def _call_stream(case: Case[Any]) -> None:
    """The event stream never ends: judge a 200 by its headers, validate an error whole."""
    request = case.as_transport_kwargs()
    with httpx.stream(
        request["method"],
        request["url"],
        params=request.get("params"),
        headers=request.get("headers"),
        timeout=10,
    ) as response:
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("text/event-stream")
            return
        response.read()
    case.validate_response(response)


def _exercise(
    operation: Operation, mode: GenerationMode, examples: int, url: str, identity: Identity
) -> None:
    label = operation.label
    signed = operation.method.upper() == "POST" and mode == GenerationMode.POSITIVE

    @fuzz_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Case[Any], data: st.DataObject) -> None:
        count("ledger-api")
        if signed:
            items = data.draw(st.integers(1, 4), label="items") if "batch" in label else 1
            bodies: list[Any] = resign(
                data, identity, url=url, chain_id="zgrid-dev", body=case.body, count=items
            )
            case.body = bodies if "batch" in label else bodies[0]
        if operation.path == STREAM:
            _call_stream(case)
        else:
            response = case.call_and_validate(timeout=30)
            if signed and response.status_code == 200:
                answers = response.json() if "batch" in label else [response.json()]
                admitted = sum("hash" in answer for answer in answers)
                count("ledger-api (signed transactions admitted)", admitted)

    run()


def test_ledger_api(ledger: LedgerProcess, identity: Identity) -> None:
    operations = _operations(ledger.url)
    assert len(operations) == 22, [operation.label for operation in operations]
    examples = SHORT_EXAMPLES if fuzz_seconds() is None else LONG_EXAMPLES

    def one_round() -> None:
        for operation in operations:
            for mode in _modes(operation):
                _exercise(operation, mode, examples, ledger.url, identity)

    keep_running(one_round)
    # Still serving, and still producing blocks, after everything it was sent.
    head = httpx.get(f"{ledger.url}/chain/head", timeout=10)
    assert head.status_code == 200


def test_the_log_has_no_crash(ledger: LedgerProcess) -> None:
    # After the fuzzing above (same module ledger): no route crashed into a 500.
    assert "Traceback" not in ledger.log.read_text()

"""Schemathesis against a real hub process: every operation of its OpenAPI, with every
standard check, and write requests signed by a twin registered on a real ledger, so that
generated uploads reach the hub's own checks rather than stopping at its signature check.

A short fixed pass under `make test`; rounds with fresh seeds for FUZZ_SECONDS under
`make fuzz`.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import CheckFunction
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.generation.hypothesis.builder import (
    HypothesisTestConfig,
    HypothesisTestMode,
    create_test,
)
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.chain.conftest import ClientFactory, running_ledger
from tests.flist.conftest import HubProcess, Twin, running_hub
from tests.flist.test_hub import client_of, dir_router, published
from tests.fuzz.budget import count, fuzz_seconds, fuzz_settings, keep_running
from tests.fuzz.hub_signing import PushBodies, prepare, signer_for
from zgrid.flist import Router, pack_directory

SHORT_EXAMPLES = 6  # fuzzed cases per operation and round, after the coverage cases
MODES = [HypothesisTestMode.EXAMPLES, HypothesisTestMode.COVERAGE, HypothesisTestMode.FUZZING]


def _packed(directory: Path, label: str, content: bytes) -> tuple[Path, Router]:
    """A small tree packed into a local block store: its .fl and the store's router."""
    source = directory / f"{label}-src"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "hostname").write_text(f"{label}\n")
    (source / "data").write_bytes(content)
    router = dir_router(directory / f"{label}-blocks")
    flist = directory / f"{label}.fl"
    asyncio.run(pack_directory(source, flist, router))
    return flist, router


@pytest.fixture(scope="module")
def fuzzed_hub(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HubProcess, Twin, PushBodies]]:
    """A ledger with one funded twin, a hub, and .fl bodies worth pushing: one whose blocks
    the hub holds, one whose blocks it lacks."""
    directory = tmp_path_factory.mktemp("fuzz-hub")
    with running_ledger(directory / "ledger") as ledger, running_hub(directory, ledger.url) as hub:
        factory = ClientFactory(ledger.url)
        try:
            client = factory()
            assert client.identity is not None
            twin = Twin(client.identity, client.create_twin())
            held, router = _packed(directory, "held", bytes(range(256)) * 64)

            async def push() -> None:
                async with client_of(hub, twin) as hub_client:
                    await hub_client.push(held, "held.fl", router)

            asyncio.run(push())
            lacking, _ = _packed(directory, "lacking", secrets.token_bytes(4096))
            yield hub, twin, PushBodies(held=published(hub, held), lacking=published(hub, lacking))
        finally:
            factory.close()


def _round(
    schema: schemathesis.BaseSchema, hub: HubProcess, twin: Twin, bodies: PushBodies
) -> None:
    seconds = fuzz_seconds()
    settings = fuzz_settings(SHORT_EXAMPLES)
    if seconds is not None:  # a long run: every round a new seed, more cases per operation
        settings = hypothesis.settings(settings, derandomize=False, max_examples=200)
    signer = signer_for(hub, twin)
    answers: Counter[tuple[str, int]] = Counter()

    def check(case: schemathesis.Case[Any]) -> None:
        fitting = prepare(case, twin, bodies)
        excluded: list[CheckFunction] = [] if fitting else [positive_data_acceptance]
        count("hub-api")
        response = case.call_and_validate(auth=signer, excluded_checks=excluded, timeout=30)
        answers[case.operation.label, response.status_code] += 1

    failures: list[BaseException] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()
        operation = result.ok()
        test = create_test(
            operation=operation,
            test_func=check,
            config=HypothesisTestConfig(
                project=schema.config,
                modes=MODES,
                settings=settings,
                seed=None if seconds is None else random.getrandbits(64),
            ),
        )
        try:
            test()
        # A check's failures are a BaseExceptionGroup: each operation's, then the next.
        except (Exception, BaseExceptionGroup) as exc:
            exc.add_note(f"in {operation.label}")
            failures.append(exc)
    if failures:
        raise BaseExceptionGroup(f"{len(failures)} operations of the hub's API failed", failures)
    # The signing works: generated uploads got past the signature check to the hub's own.
    assert answers["PUT /blocks/{hex_id}", 200], answers
    assert (
        answers["PUT /flists/{twin_id}/{name}", 400] + answers["PUT /flists/{twin_id}/{name}", 409]
    ), answers


def test_every_operation_of_the_hub_api_holds_under_generated_requests(
    fuzzed_hub: tuple[HubProcess, Twin, PushBodies],
) -> None:
    hub, twin, bodies = fuzzed_hub
    schema = schemathesis.openapi.from_url(f"{hub.url}/openapi.json", config=SchemathesisConfig())
    keep_running(lambda: _round(schema, hub, twin, bodies))
    # Nothing failed out of sight either: after its headers, or in a worker.
    assert "Traceback" not in hub.log.read_text()

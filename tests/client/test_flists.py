"""Flist references resolved against a real hub (and a hostile one) before anything is made."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.chain.conftest import ClientFactory, running_ledger
from tests.flist.conftest import HubProcess, running_hub
from tests.processes import free_port
from zgrid.client.errors import FlistNotFound
from zgrid.client.flists import MAX_HUB_ANSWER_BYTES, MAX_PUBLISHERS, resolve_flists
from zgrid.client.spec.model import MachineSpec, Spec
from zgrid.flist import Router, open_store, pack_directory
from zgrid.flist.hub import HubClient
from zgrid.identity import Identity


@dataclass(frozen=True)
class Published:
    hub: HubProcess
    alice: int  # twin ids of the two publishers
    bob: int


def _push(tmp: Path, hub: HubProcess, identity: Identity, twin_id: int, name: str) -> None:
    source = tmp / f"src-{twin_id}-{name}"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "hostname").write_text(f"{name}\n")
    router = Router([(0, 255, open_store(f"dir://{tmp}/blocks"))])
    flist = tmp / f"{twin_id}-{name}"

    async def push() -> None:
        try:
            await pack_directory(source, flist, router)
            async with HubClient(hub.url, identity=identity, twin_id=twin_id) as client:
                await client.push(flist, name, router)
        finally:
            await router.close()

    asyncio.run(push())


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """A hub where alice publishes tool.fl, shared.fl, exact and exact.fl; bob shared.fl."""
    with running_ledger(tmp_path_factory.mktemp("flists-ledger")) as ledger:
        factory = ClientFactory(ledger.url)
        try:
            twins = []
            for _ in range(2):
                client = factory()
                assert client.identity is not None
                twins.append((client.identity, client.create_twin()))
            work = tmp_path_factory.mktemp("flists-hub")
            with running_hub(work, ledger.url) as hub:
                (alice, alice_id), (bob, bob_id) = twins
                for name in ("tool.fl", "shared.fl", "exact", "exact.fl"):
                    _push(work, hub, alice, alice_id, name)
                _push(work, hub, bob, bob_id, "shared.fl")
                yield Published(hub, alice_id, bob_id)
        finally:
            factory.close()


def spec_of(*flists: str) -> Spec:
    machines = tuple(
        MachineSpec(name=f"m{index}", flist=flist) for index, flist in enumerate(flists)
    )
    return Spec(name="app", machines=machines)


def resolve(spec: Spec, hub: str | None, timeout: float = 10) -> dict[str, str]:
    return asyncio.run(resolve_flists(spec, hub=hub, timeout=timeout))


# -- against a real hub ----------------------------------------------------------------------


def test_a_bare_name_is_the_one_flist_of_that_name_and_the_node_can_fetch_it(
    published: Published,
) -> None:
    hub = published.hub.url
    urls = resolve(spec_of("tool", "tool.fl", "tool"), hub)
    expected = f"{hub}/flists/{published.alice}/tool.fl"
    assert urls == {"tool": expected, "tool.fl": expected}
    answer = httpx.get(expected, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["x-flist-owner"] == str(published.alice)


def test_an_exact_name_wins_over_the_one_with_fl(published: Published) -> None:
    urls = resolve(spec_of("exact"), published.hub.url + "/")  # a trailing / on the hub is fine
    assert urls == {"exact": f"{published.hub.url}/flists/{published.alice}/exact"}


def test_a_name_several_publishers_have_is_ambiguous_and_lists_the_choices(
    published: Published,
) -> None:
    with pytest.raises(FlistNotFound, match="ambiguous") as caught:
        resolve(spec_of("shared"), published.hub.url)
    low, high = sorted((published.alice, published.bob))
    assert f"{low}/shared.fl, {high}/shared.fl" in str(caught.value)
    assert "'m0'" in str(caught.value)


def test_a_name_nobody_publishes_names_the_machine_and_the_hub(published: Published) -> None:
    spec = Spec(
        name="app",
        machines=(
            MachineSpec(name="web", flist="nothing"),
            MachineSpec(name="api", flist="nothing"),
        ),
    )
    with pytest.raises(FlistNotFound) as caught:
        resolve(spec, published.hub.url)
    message = str(caught.value)
    assert "'nothing'" in message and "machines 'web', 'api'" in message
    assert published.hub.url in message and "no publisher has it" in message


def test_twin_and_name_is_that_twins_flist(published: Published) -> None:
    hub = published.hub.url
    bob = published.bob
    assert resolve(spec_of(f"{bob}/shared"), hub) == {
        f"{bob}/shared": f"{hub}/flists/{bob}/shared.fl"
    }
    with pytest.raises(FlistNotFound, match=f"twin {bob} publishes no flist named 'tool'"):
        resolve(spec_of(f"{bob}/tool"), hub)
    with pytest.raises(FlistNotFound, match="not a flist name"):
        resolve(spec_of(f"{bob}/bad name"), hub)


def test_a_url_on_the_hub_is_checked_and_one_elsewhere_kept_as_given(
    published: Published,
) -> None:
    hub = published.hub.url
    on_hub = f"{hub}/flists/{published.alice}/tool.fl"
    by_hash = f"{hub}/flists/by-hash/{'0' * 64}"
    elsewhere = f"http://127.0.0.1:{free_port()}/flists/1/x.fl"  # nothing listens: not asked
    urls = resolve(spec_of(on_hub, by_hash, elsewhere), hub)
    assert urls == {on_hub: on_hub, by_hash: by_hash, elsewhere: elsewhere}
    with pytest.raises(FlistNotFound, match=f"twin {published.alice} publishes no flist named"):
        resolve(spec_of(f"{hub}/flists/{published.alice}/tool"), hub)  # a URL is exact


# -- without a hub, and malformed references ---------------------------------------------------


def test_without_a_hub_only_urls_resolve() -> None:
    url = "https://hub.example/flists/3/busybox.fl"
    assert asyncio.run(resolve_flists(spec_of(url), hub=None)) == {url: url}
    for reference in ("busybox", "3/busybox.fl"):
        with pytest.raises(FlistNotFound, match="a hub must be configured"):
            resolve(spec_of(reference), None)
    assert resolve(Spec(name="app"), None) == {}


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("http://", "names no host"),
        ("https://exa mple/x.fl", "white space"),
        ("http://host:99999/x.fl", "not a valid URL"),
        ("http://host/" + "x" * 2100, "longer than 2048"),
        ("ftp://host/x.fl", "neither an http"),
        ("../etc/passwd", "neither an http"),
        ("a/b/c", "neither an http"),
    ],
)
def test_a_malformed_reference_is_refused_before_any_request(reference: str, reason: str) -> None:
    hub = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would fail otherwise
    with pytest.raises(FlistNotFound, match=reason):
        resolve(spec_of(reference), hub)


def test_a_bad_or_unreachable_hub_is_a_clear_error() -> None:
    with pytest.raises(FlistNotFound, match=r"hub URL 'hub\.example' is not usable"):
        resolve(spec_of("busybox"), "hub.example")
    hub = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(FlistNotFound, match=f"cannot look up flist 'busybox' .* on the hub {hub}"):
        resolve(spec_of("busybox"), hub)


# -- a hostile hub -----------------------------------------------------------------------------

Handler = Callable[[str, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def hostile_hub(handler: Handler) -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ")[1].decode()
            await handler(path, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def answer(body: bytes, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (size, body)


def against(handler: Handler, reference: str = "busybox", timeout: float = 5) -> None:
    async def main() -> None:
        async with hostile_hub(handler) as hub:
            await resolve_flists(spec_of(reference), hub=hub, timeout=timeout)

    asyncio.run(main())


def test_a_huge_answer_is_cut_off() -> None:
    async def declared(path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(b"[]", length=MAX_HUB_ANSWER_BYTES + 1))
        await writer.drain()

    async def streamed(path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"[" + b" " * (1 << 20)
        for _ in range(5):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    for handler in (declared, streamed):
        with pytest.raises(FlistNotFound, match="larger than"):
            against(handler)


def test_a_hub_that_drips_its_answer_is_given_up_on() -> None:
    async def drip(path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)

    with pytest.raises(FlistNotFound, match=r"no answer in 0.5 s"):
        against(drip, timeout=0.5)


def test_answers_in_another_form_or_too_many_are_refused() -> None:
    def serving(owners: bytes, flists: bytes = b"[]") -> Handler:
        async def handler(path: str, writer: asyncio.StreamWriter) -> None:
            writer.write(answer(owners if path == "/flists" else flists))
            await writer.drain()

        return handler

    cases = [
        (serving(b'{"owner": 1}'), "did not answer a JSON list"),
        (serving(b"not json"), "did not answer a JSON list"),
        (serving(b'[{"owner": "1"}]'), "in a form this client does not read"),
        (serving(b'[{"owner": true}]'), "in a form this client does not read"),
        (serving(b'[{"owner": 1}]', b"[5]"), "in a form this client does not read"),
        (
            serving(
                json.dumps([{"owner": n, "count": 1} for n in range(MAX_PUBLISHERS + 1)]).encode()
            ),
            f"more than {MAX_PUBLISHERS} publishers",
        ),
        (serving(json.dumps([{"owner": 1}] * 10_001).encode()), "more than 10000 entries"),
    ]
    for handler, reason in cases:
        with pytest.raises(FlistNotFound, match=reason):
            against(handler)


def test_a_hub_refusing_a_listing_is_reported() -> None:
    async def refuse(path: str, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    with pytest.raises(FlistNotFound, match="answered 403"):
        against(refuse)

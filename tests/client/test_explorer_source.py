"""Node offers read from a real explorer (`zgrid explorer run` over the story's ledger):
the same grid the ledger shows, less each node's system reserve; every page, bounded;
an explorer that fails or answers nonsense refused with what to do; and the planner of
`zgrid plan` reading from it when the network has one."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.chain.conftest import LedgerProcess
from tests.explorer.fixtures import ExplorerProcess
from tests.explorer.story import Story
from tests.processes import free_port, zgrid_here
from zgrid.chain import ChainClient
from zgrid.client import (
    ExplorerNodeSource,
    ExplorerUnavailable,
    InvalidAnswer,
    LedgerNodeSource,
    NetworkConfig,
    NodeOffer,
    Store,
)
from zgrid.client.explorer_source import MAX_PAGE_BYTES
from zgrid.types import GIB

MACHINE = """\
name: probe
machines:
  - name: web
    flist: https://hub.example.org/flists/1/busybox.fl
    cpu: 1
    memory: 256MiB
    placement:
      country: {country}
"""


SAME = (
    *("twin_id", "farm_id", "farm_name", "status", "country", "city", "total"),
    *("rented_by", "certified", "pricing_policy_id"),
)


def _read(source: ExplorerNodeSource | LedgerNodeSource) -> list[NodeOffer]:
    return asyncio.run(source.offers())


def _ledger_offers(url: str) -> list[NodeOffer]:
    async def read() -> list[NodeOffer]:
        async with ChainClient(url) as chain:
            return await LedgerNodeSource(chain).offers()

    return asyncio.run(read())


async def _height_of(url: str) -> int:
    async with ChainClient(url) as chain:
        return int((await chain.head())["height"])


def test_the_explorer_offers_the_ledgers_nodes_less_their_system_reserve(
    story: Story,
    story_ledger: LedgerProcess,
    story_explorer: ExplorerProcess,
) -> None:
    ledger = _ledger_offers(story_ledger.url)
    source = ExplorerNodeSource(
        story_explorer.url, ledger_height=lambda: _height_of(story_ledger.url)
    )
    explorer = _read(source)
    assert [o.node_id for o in explorer] == [o.node_id for o in ledger]
    assert story.node_ids["spare"] not in {o.node_id for o in explorer}, "removed: not offered"
    for mine, theirs in zip(explorer, ledger, strict=True):
        for name in SAME:
            assert getattr(mine, name) == getattr(theirs, name), (mine.node_id, name)
        reserve = max(theirs.total.mru // 10, 2 * GIB)
        assert mine.free.mru == max(0, theirs.free.mru - reserve), mine.node_id
        assert mine.free.sru == max(0, theirs.free.sru - 20 * GIB), mine.node_id
        assert (mine.free.cru, mine.free.hru) == (theirs.free.cru, theirs.free.hru)
        assert mine.free.ipv4 == theirs.free.ipv4, mine.node_id
    # The story has each kind: certified (gamma), rented (brussels), each status.
    by_id = {o.node_id: o for o in explorer}
    assert by_id[story.node_ids["newyork"]].certified
    assert by_id[story.node_ids["brussels"]].rented_by == story.twin_ids["renter"]
    assert {o.status for o in explorer} == {"up", "down", "standby"}
    assert by_id[story.node_ids["ghent"]].total.ipv4 == 3
    assert source.description == f"the explorer at {story_explorer.url}"


def test_small_pages_read_every_node_and_too_many_pages_are_refused(
    story_explorer: ExplorerProcess,
) -> None:
    whole = _read(ExplorerNodeSource(story_explorer.url))
    assert len(whole) == 6
    assert _read(ExplorerNodeSource(story_explorer.url, page_size=2)) == whole
    with pytest.raises(InvalidAnswer, match=r"lists 6 nodes, more than the 4 this client reads"):
        _read(ExplorerNodeSource(story_explorer.url, page_size=2, max_pages=2))


def test_an_explorer_that_does_not_answer_says_so_and_how_to_plan_without_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    source = ExplorerNodeSource(url, without="to plan from the ledger instead: ...")
    with pytest.raises(ExplorerUnavailable) as caught:
        _read(source)
    message = str(caught.value)
    assert message.startswith(f"the explorer at {url} cannot be reached (ConnectError")
    assert message.endswith("; to plan from the ledger instead: ...")


@dataclass
class FakeExplorer:
    """A tiny HTTP server on loopback answering what a test sets, per path."""

    url: str = ""
    answers: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)

    def answer(self, path: str, body: Any, *, status: int = 200, count: int | None = None) -> None:
        headers = {} if count is None else {"count": str(count)}
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = (status, headers, raw)


@pytest.fixture
def fake() -> Iterator[FakeExplorer]:
    explorer = FakeExplorer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            status, headers, body = explorer.answers.get(path, (404, {}, b'{"error":"not found"}'))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    explorer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield explorer
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


NODE = {
    "nodeId": 7,
    "twinId": 9,
    "farmId": 1,
    "status": "up",
    "total_resources": {"cru": 2, "mru": 4 * GIB, "sru": 40 * GIB, "hru": 0},
    "free_resources": {"cru": 2, "mru": -5, "sru": 20 * GIB, "hru": 0},
    "farm_free_ips": 1,
    "country": "Belgium",
    "certificationType": "DIY",
}
FARM = {"farmId": 1, "name": "solo", "pricingPolicyId": 1, "publicIps": [{"ip": "x"}] * 2}


def test_a_grid_proxy_without_indexer_is_read_as_it_answers(fake: FakeExplorer) -> None:
    fake.answer("/nodes", [NODE], count=1)
    fake.answer("/farms", [FARM], count=1)

    async def far_ahead() -> int:
        return 10**6

    (offer,) = _read(ExplorerNodeSource(fake.url, ledger_height=far_ahead))
    assert (offer.node_id, offer.farm_name, offer.free.mru, offer.free.ipv4) == (7, "solo", 0, 1)
    assert offer.total.ipv4 == 2


def test_an_explorer_behind_the_ledger_is_waited_for_then_refused(fake: FakeExplorer) -> None:
    fake.answer("/indexer", {"height": 41, "error": "the ledger does not answer"})

    async def ledger_at() -> int:
        return 42

    source = ExplorerNodeSource(fake.url, ledger_height=ledger_at, catch_up=0.3)
    with pytest.raises(ExplorerUnavailable, match=r"to height 41, not yet to its head 42 after"):
        _read(source)


@pytest.mark.parametrize(
    ("path", "body", "count", "problem"),
    [
        ("/nodes", [{**NODE, "status": "sideways"}], 1, r"/nodes page 1 item 0: status: "),
        ("/nodes", [{**NODE, "nodeId": -1}], 1, r"/nodes page 1 item 0: nodeId: "),
        ("/nodes", [{**NODE, "country": "x" * 65}], 1, r"item 0: country: "),
        ("/nodes", [NODE], None, r"/nodes page 1 has no valid count header"),
        ("/nodes", [NODE, {**NODE, "nodeId": 8}], 2, r"answered 2 nodes on a page of 1"),
        ("/nodes", {"nodes": []}, 1, r"/nodes page 1 is not a list"),
        ("/nodes", b"<html>", 1, r"/nodes page 1 is not JSON"),
        ("/farms", [{**FARM, "farmId": 2}], 1, r"node 7 is in farm 1, which the explorer at"),
        ("/farms", [{**FARM, "name": 3}], 1, r"/farms page 1 item 0: name: "),
    ],
)
def test_a_malformed_answer_is_refused_naming_the_field(
    fake: FakeExplorer, path: str, body: Any, count: int | None, problem: str
) -> None:
    fake.answer("/nodes", [NODE], count=1)
    fake.answer("/farms", [FARM], count=1)
    fake.answer(path, body, count=count)
    with pytest.raises(InvalidAnswer, match=problem):
        _read(ExplorerNodeSource(fake.url, page_size=1))


def test_an_answer_too_large_is_refused_unread(fake: FakeExplorer) -> None:
    fake.answer("/nodes", b"[" + b" " * MAX_PAGE_BYTES + b"]", count=0)
    with pytest.raises(InvalidAnswer, match=rf"more than {MAX_PAGE_BYTES} bytes for /nodes page 1"):
        _read(ExplorerNodeSource(fake.url))


def test_an_error_answer_names_the_explorer_and_its_message(fake: FakeExplorer) -> None:
    fake.answer("/nodes", {"error": "the explorer's database cannot be read now"}, status=503)
    with pytest.raises(ExplorerUnavailable) as caught:
        _read(ExplorerNodeSource(fake.url, without="plan elsewhere"))
    assert str(caught.value) == (
        f"the explorer at {fake.url} answered /nodes with an error: the explorer's database "
        "cannot be read now; plan elsewhere"
    )


def _home(tmp_path: Path, ledger: str, explorer: str | None) -> Path:
    home = tmp_path / "home"
    created = zgrid_here("identity", "new", home=home)
    assert created.returncode == 0, created.stderr
    store = Store(home)
    store.add_network(NetworkConfig(name="story", ledger=ledger, explorer=explorer))
    store.use_network("story")
    return home


def test_plan_reads_the_networks_explorer_and_says_so(
    tmp_path: Path,
    story: Story,
    story_ledger: LedgerProcess,
    story_explorer: ExplorerProcess,
) -> None:
    spec = tmp_path / "probe.yaml"
    # Belgium: ghent (up, room left), brussels (rented by another twin): only ghent fits.
    spec.write_text(MACHINE.format(country="Belgium"))
    home = _home(tmp_path, story_ledger.url, story_explorer.url)
    done = zgrid_here("plan", str(spec), "--json", home=home)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["nodes_from"] == {"source": "explorer", "url": story_explorer.url}
    assert [c["node_id"] for c in plan["contracts"]] == [story.node_ids["ghent"]]
    shown = zgrid_here("plan", str(spec), home=home)
    assert f"(nodes from the explorer at {story_explorer.url})" in shown.stdout.splitlines()[0]
    listed = zgrid_here("nodes", home=home)
    assert listed.stdout.splitlines()[-1] == f"6 node(s) on the explorer at {story_explorer.url}"
    # --ledger reads the ledger instead; --explorer any explorer.
    direct = zgrid_here("nodes", "--ledger", story_ledger.url, home=home)
    assert direct.stdout.splitlines()[-1] == f"6 node(s) on the ledger at {story_ledger.url}"
    bad = zgrid_here("nodes", "--explorer", "ftp://nowhere", home=home)
    assert bad.returncode == 2 and "--explorer" in bad.stderr
    # Without an explorer, the same plan is made from the ledger.
    Store(home).add_network(NetworkConfig(name="story", ledger=story_ledger.url), overwrite=True)
    again = json.loads(zgrid_here("plan", str(spec), "--json", home=home).stdout)
    assert again["nodes_from"] == {"source": "ledger", "url": story_ledger.url}
    assert again["contracts"] == plan["contracts"]


def test_a_network_whose_explorer_is_down_fails_the_plan_in_one_line(
    tmp_path: Path,
    story_ledger: LedgerProcess,
) -> None:
    spec = tmp_path / "probe.yaml"
    spec.write_text(MACHINE.format(country="Egypt"))
    dead = f"http://127.0.0.1:{free_port()}"
    home = _home(tmp_path, story_ledger.url, dead)
    done = zgrid_here("plan", str(spec), home=home)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: the explorer at {dead} cannot be reached"), line
    assert line.endswith(
        f"to plan from the ledger instead: `zgrid network add story --ledger "
        f"{story_ledger.url} --force` (without --explorer)"
    ), line

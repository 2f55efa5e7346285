"""The explorer's web pages over the story's grid, in a real headless Chromium and over
plain HTTP: the nodes' filters and sorting are the API's, a node's capacity, the charts
of the statistics page, a contract's bills; errors as HTML pages; input escaped."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import (
    Browser,
    browser,  # noqa: F401  # the module's Chromium
    screenshots,  # noqa: F401
)
from tests.explorer.fixtures import ExplorerProcess
from tests.explorer.story import Story
from zgrid.chain import format_tokens
from zgrid.explorer.charts import Bar, Series, bar_chart, human_bytes, line_chart

GIB = 1024**3


def _api(explorer: ExplorerProcess, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{explorer.url}{path}", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _attributes(browser: Browser, css: str, name: str) -> list[str]:  # noqa: F811
    found: list[str] = browser.run_js(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map((element) => element.getAttribute(arguments[1]));",
        css,
        name,
    )
    return found


def _submit(browser: Browser, button: str, wanted: str) -> None:  # noqa: F811
    """Submit the form and wait until the page it leads to has loaded."""
    browser.click(button)
    deadline = time.monotonic() + 10
    while wanted not in browser.url or browser.run_js("return document.readyState") != "complete":
        assert time.monotonic() < deadline, f"{browser.url} never showed {wanted}"
        time.sleep(0.05)


def _node_ids(browser: Browser) -> list[int]:  # noqa: F811
    return [int(value) for value in _attributes(browser, "tr.node", "data-node-id")]


# -- in the browser ----------------------------------------------------------------------------


def test_nodes_table_filters_by_country_and_free_memory_and_sorts(
    browser: Browser,  # noqa: F811
    story_explorer: ExplorerProcess,
    screenshots: Path,  # noqa: F811
) -> None:
    every = _api(story_explorer, "/nodes")
    browser.open(f"{story_explorer.url}/explorer/nodes")
    assert _node_ids(browser) == [node["nodeId"] for node in every]

    browser.select("#country", "Egypt")
    _submit(browser, "#apply", "country=Egypt")
    egyptian = [node["nodeId"] for node in _api(story_explorer, "/nodes", country="Egypt")]
    assert 0 < len(egyptian) < len(every)
    assert _node_ids(browser) == egyptian
    assert all(text.startswith("Egypt") for text in browser.texts("tr.node td.country"))
    browser.screenshot(screenshots / "nodes-egypt.png", full_page=True)

    # A minimum between the second and third largest free memory keeps the two largest.
    free = sorted((node["free_resources"]["mru"] for node in every), reverse=True)
    gib = round((free[1] + free[2]) / 2 / GIB, 1)
    browser.open(f"{story_explorer.url}/explorer/nodes")
    browser.fill("#free-memory", str(gib))
    _submit(browser, "#apply", "free_memory=")
    biggest = _api(story_explorer, "/nodes", free_mru=math.ceil(gib * GIB))
    assert len(biggest) == 2
    assert _node_ids(browser) == [node["nodeId"] for node in biggest]

    browser.open(f"{story_explorer.url}/explorer/nodes")
    browser.select("#sort-by", "free_mru")
    browser.select("#sort-order", "desc")
    _submit(browser, "#apply", "sort_order=desc")
    ordered = _api(story_explorer, "/nodes", sort_by="free_mru", sort_order="desc")
    shown = _node_ids(browser)
    assert shown == [node["nodeId"] for node in ordered]
    assert shown != sorted(shown)
    memory = [int(value) for value in _attributes(browser, "tr.node", "data-free-mru")]
    assert memory == sorted(memory, reverse=True)
    shot = browser.screenshot(screenshots / "nodes-sorted.png", full_page=True)
    assert shot.stat().st_size > 1000 and (screenshots / "nodes-egypt.png").exists()


def test_node_page_shows_its_capacity(
    browser: Browser,  # noqa: F811
    story: Story,
    story_explorer: ExplorerProcess,
    screenshots: Path,  # noqa: F811
) -> None:
    node_id = story.node_ids["ghent"]
    nested = _api(story_explorer, f"/nodes/{node_id}")
    (listed,) = _api(story_explorer, "/nodes", node_ids=node_id)
    browser.open(f"{story_explorer.url}/explorer/nodes/{node_id}")
    assert browser.texts("h1") == [f"Node {node_id}"]
    rows = browser.run_js(
        "return Array.from(document.querySelectorAll('#node-capacity tbody tr')).map((row) => ({"
        "resource: row.dataset.resource, total: row.dataset.total, used: row.dataset.used,"
        "free: row.dataset.free, texts: Array.from(row.querySelectorAll('td.number'))"
        ".map((cell) => cell.textContent.trim())}));"
    )
    assert [row["resource"] for row in rows] == ["cru", "mru", "sru", "hru"]
    for row in rows:
        key = row["resource"]
        total = nested["capacity"]["total_resources"][key]
        used = nested["capacity"]["used_resources"][key]
        free = listed["free_resources"][key]
        assert (int(row["total"]), int(row["used"]), int(row["free"])) == (total, used, free)
        shown = [str(v) if key == "cru" else human_bytes(v) for v in (total, used, free)]
        assert row["texts"] == shown
    assert browser.texts("#node-status .status") == [nested["status"]]
    assert browser.texts("#node-farm a") == [nested["farmName"]]
    assert nested["publicConfig"]["ipv4"] in browser.texts("#public-config")[0]
    contracts = _api(story_explorer, "/contracts", node_id=node_id)
    assert _attributes(browser, "tr.contract", "data-contract-id") == [
        str(contract["contract_id"]) for contract in reversed(contracts)
    ]
    shot = browser.screenshot(screenshots / "node.png", full_page=True)
    assert shot.exists()


def test_statistics_page_draws_its_charts(
    browser: Browser,  # noqa: F811
    story_explorer: ExplorerProcess,
    screenshots: Path,  # noqa: F811
) -> None:
    stats = _api(story_explorer, "/stats")
    browser.open(f"{story_explorer.url}/explorer")
    assert browser.texts("#total-nodes") == [str(stats["nodes"])]
    for chart in ("chart-memory", "chart-disk", "chart-nodes"):
        boxes = browser.run_js(
            "return Array.from(document.querySelectorAll(`#${arguments[0]} path.line`))"
            ".map((path) => { const box = path.getBBox();"
            " return [box.width, box.height, path.getAttribute('d').split('L').length]; });",
            chart,
        )
        assert len(boxes) >= 2, chart
        # Lines across the whole history: wide, with a point for each hour (two days).
        assert all(width > 300 and points > 40 for width, _, points in boxes), (chart, boxes)
        assert browser.run_js(f"return document.querySelectorAll('#{chart} path.area').length")
    bars = browser.run_js(
        "return Array.from(document.querySelectorAll('#chart-countries rect.bar')).map((bar) =>"
        " { const box = bar.getBBox(); return [bar.dataset.label, Number(bar.dataset.value),"
        " box.width, box.height]; });"
    )
    expected = {
        country or "unknown": count for country, count in stats["nodesDistribution"].items()
    }
    assert {label: value for label, value, _, _ in bars} == expected
    assert all(width > 0 and height > 0 for _, _, width, height in bars)
    widest = max(bars, key=lambda bar: bar[1])
    for _, value, width, _ in bars:  # lengths in proportion to the counts
        assert width == pytest.approx(widest[2] * value / widest[1], rel=0.02)
    shot = browser.screenshot(screenshots / "statistics.png", full_page=True)
    assert shot.exists()


def test_contract_page_lists_its_bills(
    browser: Browser,  # noqa: F811
    story: Story,
    story_explorer: ExplorerProcess,
    screenshots: Path,  # noqa: F811
) -> None:
    contract_id = story.contract_ids["web"]
    path = f"/contracts/{contract_id}/bills"
    before = int(httpx.get(f"{story_explorer.url}{path}?ret_count=true").headers["count"])
    browser.open(f"{story_explorer.url}/explorer/contracts/{contract_id}")
    after = int(httpx.get(f"{story_explorer.url}{path}?ret_count=true").headers["count"])
    numbers = [int(value) for value in _attributes(browser, "tr.bill", "data-number")]
    assert before > 10
    assert min(before, 50) <= len(numbers) <= min(after, 50)
    assert numbers == list(range(1, len(numbers) + 1))
    first = _api(story_explorer, path)[0]
    assert browser.texts("tr.bill td.amount")[0] == format_tokens(first["amountBilled"])
    found = browser.texts(".pager .found")[0]
    assert found.startswith((f"{before} found", f"{after} found")), found
    shot = browser.screenshot(screenshots / "contract.png", full_page=True)
    assert shot.exists()


# -- over HTTP ---------------------------------------------------------------------------------


def test_every_page_answers_html_and_stays_out_of_the_api_schema(
    story: Story,
    story_explorer: ExplorerProcess,
) -> None:
    url = story_explorer.url
    for root in ("/", "/explorer/"):
        home = httpx.get(f"{url}{root}", follow_redirects=False)
        assert home.status_code == 307 and home.headers["location"] == "/explorer"
    node, farm = story.node_ids["cairo"], story.farm_ids["beta"]
    name, rent = 7, story.contract_ids["rent"]
    for path in (
        "/explorer",
        "/explorer?days=0",
        "/explorer/nodes",
        "/explorer/nodes?status=up&farm_ids=1&free_disk=10&free_ips=1&sort_by=uptime",
        f"/explorer/nodes/{node}",
        "/explorer/farms",
        f"/explorer/farms/{farm}",
        "/explorer/contracts",
        f"/explorer/contracts?state=deleted&twin_id={story.twin_ids['rich']}",
        f"/explorer/contracts/{name}",
        f"/explorer/contracts/{rent}",
    ):
        answer = httpx.get(f"{url}{path}")
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "<h1>" in answer.text
    style = httpx.get(f"{url}/explorer/static/explorer.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    schema = httpx.get(f"{url}/openapi.json").json()
    assert not [path for path in schema["paths"] if path == "/" or path.startswith("/explorer")]


def test_contract_and_farm_lists_are_the_apis(
    story: Story,
    story_explorer: ExplorerProcess,
) -> None:
    url, rich = story_explorer.url, story.twin_ids["rich"]
    queries: list[dict[str, str | int]] = [
        {"state": "deleted"},
        {"twin_id": rich},
        {"twin_id": rich, "state": "created"},
    ]
    for query in queries:
        page = httpx.get(f"{url}/explorer/contracts", params=query)
        shown = [int(i) for i in re.findall(r'data-contract-id="(\d+)"', page.text)]
        listed = [
            contract["contract_id"] for contract in _api(story_explorer, "/contracts", **query)
        ]
        assert shown == listed and 0 < len(shown) < 9, query
    page = httpx.get(f"{url}/explorer/farms", params={"sort_by": "name", "sort_order": "desc"})
    shown = [int(i) for i in re.findall(r'data-farm-id="(\d+)"', page.text)]
    listed = _api(story_explorer, "/farms", sort_by="name", sort_order="desc")
    assert shown == [farm["farmId"] for farm in listed] == sorted(shown, reverse=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/explorer/nodes?free_memory=lots", "free_memory"),
        ("/explorer/nodes?status=sideways", "status"),
        ("/explorer/nodes?sort_by=colour", "colour"),
        ("/explorer/nodes?free_ips=-1", "free_ips"),
        ("/explorer/contracts?state=paused", "state"),
        ("/explorer/farms?free_ips=many", "free_ips"),
        ("/explorer?days=soon", "days"),
        ("/explorer/nodes?bogus=1", "bogus"),
    ],
)
def test_a_bad_filter_is_a_400_page_naming_the_field(
    story_explorer: ExplorerProcess,
    query: str,
    field: str,
) -> None:
    answer = httpx.get(f"{story_explorer.url}{query}")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert field in answer.text and "Bad filter" in answer.text
    page = query.split("?", maxsplit=1)[0]
    assert f'class="back" href="{page}"' in answer.text  # the same page, unfiltered


def test_unknown_things_are_404_pages(
    story_explorer: ExplorerProcess,
) -> None:
    for path in (
        "/explorer/nodes/999999",
        "/explorer/nodes/abc",
        "/explorer/farms/999",
        "/explorer/contracts/999999",
        "/explorer/contracts/99999999999999999999999",
        "/explorer/nowhere",
    ):
        answer = httpx.get(f"{story_explorer.url}{path}")
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "Not found" in answer.text


def test_values_from_the_query_are_escaped(
    story_explorer: ExplorerProcess,
) -> None:
    payload = "<script>alert(1)</script>"
    page = httpx.get(f"{story_explorer.url}/explorer/nodes", params={"country": payload})
    assert page.status_code == 200
    assert payload not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "No node matches" in page.text
    bad = httpx.get(f"{story_explorer.url}/explorer/nodes", params={"free_memory": payload})
    assert bad.status_code == 400
    assert payload not in bad.text and "&lt;script&gt;" in bad.text


# -- the charts, alone ------------------------------------------------------------------------


def test_charts_escape_labels_and_draw_what_they_are_given() -> None:
    bars = bar_chart([Bar("<b>land</b>", 3, "/x?a=1&b=2"), Bar("", 0)], title="t & u")
    assert "<b>" not in bars and "&lt;b&gt;land&lt;/b&gt;" in bars
    assert 'href="/x?a=1&amp;b=2"' in bars and "<title>t &amp; u</title>" in bars
    assert 'data-value="0"' in bars and 'data-bars="2"' in bars
    empty = line_chart([], [Series("a", [], "total")], title="none")
    assert "no history yet" in empty and "<path" not in empty
    one = line_chart([3600], [Series("a", [5.0], "total", area=True)], title="one")
    assert one.count("<path") == 2 and 'data-last="5"' in one
    memory = line_chart(
        [0, 3600],
        [Series("m", [40 * GIB, 150 * GIB], "used")],
        title="m",
        fmt=human_bytes,
        base=1024,
    )
    assert ">200 GiB</text>" in memory and ">0 B</text>" in memory
    assert human_bytes(34359738368) == "32 GiB" and human_bytes(1536) == "1.5 KiB"

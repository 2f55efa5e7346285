"""The headless Chromium of the page tests is a real one: it runs a page's script, takes
input and leaves screenshots."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import (
    Browser,
    browser,  # noqa: F401  # the module's Chromium
    screenshot_dir,
    screenshots,  # noqa: F401
)

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Farms</title></head>
<body>
<h1>Farms</h1>
<form id="search">
  <input id="name" name="name">
  <select id="country"><option value="be">Belgium</option><option value="eg">Egypt</option></select>
  <button id="go" type="submit">Search</button>
</form>
<ul id="results"></ul>
<p id="status">idle</p>
<script>
document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = document.getElementById("name").value;
  const country = document.getElementById("country").value;
  setTimeout(() => {
    const item = document.createElement("li");
    item.textContent = name + " in " + country;
    document.getElementById("results").appendChild(item);
    document.getElementById("status").textContent = "found 1";
  }, 200);
});
console.error("a deliberate console error");
</script>
</body></html>
"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_browser_runs_the_pages_script_and_takes_input(
    browser: Browser,  # noqa: F811
    site: str,
    screenshots: Path,  # noqa: F811
) -> None:
    browser.open(site)
    assert browser.title == "Farms"
    assert browser.texts("h1") == ["Farms"]
    assert browser.run_js("return window.innerWidth") == 1280
    errors = browser.console_errors()
    assert any("a deliberate console error" in error for error in errors), errors

    browser.fill("#name", "Freefarm")
    browser.select("#country", "eg")
    browser.click("#go")
    browser.wait_for_text("#status", "found 1")
    assert browser.texts("#results li") == ["Freefarm in eg"]
    browser.select("#country", "Belgium", by_label=True)
    assert browser.run_js("return document.getElementById('country').value") == "be"

    shot = browser.screenshot(screenshots / "farms.png")
    whole = browser.screenshot(screenshots / "farms-full.png", full_page=True)
    for png in (shot, whole):
        data = png.read_bytes()
        assert len(data) > 1000
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert shot.parent == screenshots and screenshots.is_dir()


def test_waiting_for_what_never_comes_fails_clearly(browser: Browser, site: str) -> None:  # noqa: F811
    browser.open(site)
    with pytest.raises(AssertionError, match=r"no '#status' with the text 'never' within 0.3 s"):
        browser.wait_for_text("#status", "never", timeout=0.3)
    with pytest.raises(AssertionError, match="no visible '#missing'"):
        browser.wait_for("#missing", timeout=0.3)


def test_screenshot_directory_follows_the_variable(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ZGRID_TEST_OUTPUT", str(tmp_path))
    directory = screenshot_dir(request)
    assert directory.parent == tmp_path
    assert directory.name.endswith("test_screenshot_directory_follows_the_variable")
    (directory / "stale.png").write_bytes(b"x")
    assert list(screenshot_dir(request).iterdir()) == []  # each run starts empty

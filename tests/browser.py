"""A headless Chromium for page tests: Debian's chromium and chromedriver driven by
selenium, offline (nothing is downloaded), with a profile of its own removed at the end.

In a test module (or a package's conftest), import the fixtures so pytest finds them::

    from tests.browser import browser, screenshots  # noqa: F401

    def test_home(browser: Browser, screenshots: Path) -> None:
        browser.open(url)
        assert browser.texts("h1") == ["Nodes"]
        browser.screenshot(screenshots / "home.png")

``browser`` is one Chromium per test module (cookies and storage carry over between its
tests: ``reset()`` clears them). Without chromium or chromedriver it skips; under CI
(``CI=true``) it fails. Screenshots go to ``$ZGRID_TEST_OUTPUT/<test>/`` when that is set,
else to ``test-output/<test>/`` at the repository's root (see :func:`screenshot_dir`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pytest

from tests.conftest import IN_CI

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]
OUTPUT_VARIABLE = "ZGRID_TEST_OUTPUT"
_LOG_TAIL = 2000
_Found = TypeVar("_Found")

# Headless, as root in a container (no sandbox, a small /dev/shm, no GPU), and quiet: a
# test browser makes no connection of its own (updates, sync, metrics).
CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--lang=en-US",
)


class BrowserError(RuntimeError):
    """Chromium or chromedriver did not start, or the browser is used when not started."""


def _missing_reason() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"needs {path} (Debian package {package})"
    try:
        import selenium  # noqa: F401, PLC0415
    except ImportError:
        return "needs the selenium package"
    return None


class Browser:
    """One headless Chromium window of ``width`` x ``height`` pixels.

    The helpers take CSS selectors and wait (up to ``timeout`` seconds, 10 by default) for
    what they act on, so a test reads like what a user does: ``fill``, ``select``,
    ``click``, then ``wait_for_text``.
    """

    def __init__(self, *, width: int = 1280, height: int = 900, page_timeout: float = 30) -> None:
        self.width = width
        self.height = height
        self.page_timeout = page_timeout
        self.home: Path | None = None
        self._driver: WebDriver | None = None

    @property
    def driver(self) -> WebDriver:
        """The selenium WebDriver (``selenium.webdriver.Chrome``)."""
        if self._driver is None:
            raise BrowserError("the browser is not started")
        return self._driver

    def start(self) -> Browser:
        if self._driver is not None:
            raise BrowserError("the browser is already started")
        if (reason := _missing_reason()) is not None:
            raise BrowserError(reason)
        from selenium import webdriver  # noqa: PLC0415  # only page tests need selenium
        from selenium.common.exceptions import WebDriverException  # noqa: PLC0415
        from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

        # Both paths are given, so selenium never runs its manager (which downloads
        # drivers); should it run anyway, it stays offline.
        os.environ.setdefault("SE_OFFLINE", "true")
        os.environ.setdefault("SE_AVOID_STATS", "true")
        self.home = Path(tempfile.mkdtemp(prefix="zgrid-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in CHROMIUM_ARGUMENTS:
            options.add_argument(argument)
        options.add_argument(f"--window-size={self.width},{self.height}")
        options.add_argument(f"--user-data-dir={self.home / 'profile'}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(
            executable_path=str(CHROMEDRIVER), log_output=str(self.home / "chromedriver.log")
        )
        try:
            driver = webdriver.Chrome(options=options, service=service)
        except WebDriverException as exc:
            message = f"chromium did not start: {exc.msg}{self._log_tail()}"
            self._remove()
            raise BrowserError(message) from exc
        except BaseException:
            self._remove()
            raise
        driver.set_page_load_timeout(self.page_timeout)
        driver.set_script_timeout(self.page_timeout)
        self._driver = driver
        return self

    def stop(self) -> None:
        """Quit Chromium and chromedriver and remove the profile. Safe to call twice."""
        driver, self._driver = self._driver, None
        try:
            if driver is not None:
                with contextlib.suppress(Exception):  # a crashed browser still gets cleaned up
                    driver.quit()
        finally:
            self._remove()

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- pages

    def open(self, url: str) -> None:
        """Load ``url`` and wait until the page has loaded."""
        self.driver.get(url)

    @property
    def url(self) -> str:
        return str(self.driver.current_url)

    @property
    def title(self) -> str:
        return str(self.driver.title)

    def reset(self) -> None:
        """Forget cookies and storage, and show a blank page."""
        self.driver.delete_all_cookies()
        with contextlib.suppress(Exception):  # storage of about:blank is not reachable
            self.driver.execute_script("localStorage.clear(); sessionStorage.clear();")
        self.driver.get("about:blank")

    def run_js(self, script: str, *args: Any) -> Any:
        """Run ``script`` in the page (``arguments[0]``... are ``args``); return its value."""
        return self.driver.execute_script(script, *args)

    # -- elements

    def wait_for(self, css: str, timeout: float = 10, *, visible: bool = True) -> WebElement:
        """The first element matching ``css`` once it is there (and ``visible``)."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415
        from selenium.webdriver.support import expected_conditions  # noqa: PLC0415

        locator = (By.CSS_SELECTOR, css)
        condition = (
            expected_conditions.visibility_of_element_located(locator)
            if visible
            else expected_conditions.presence_of_element_located(locator)
        )
        return self._wait(condition, timeout, f"no {'visible ' if visible else ''}{css!r}")

    def wait_for_text(self, css: str, text: str, timeout: float = 10) -> WebElement:
        """The first element matching ``css`` once its text contains ``text``."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415
        from selenium.webdriver.support import expected_conditions  # noqa: PLC0415

        self._wait(
            expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text),
            timeout,
            f"no {css!r} with the text {text!r}",
        )
        return self.wait_for(css, timeout=1, visible=False)

    def texts(self, css: str) -> list[str]:
        """The visible text of every element matching ``css`` now (hidden ones give "")."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        return [str(element.text) for element in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def fill(self, css: str, value: str, timeout: float = 10) -> None:
        """Replace what the input or textarea ``css`` holds with ``value``, typed."""
        element = self.wait_for(css, timeout)
        element.clear()
        element.send_keys(value)

    def select(self, css: str, value: str, timeout: float = 10, *, by_label: bool = False) -> None:
        """Choose the option of the <select> ``css`` whose value (or label) is ``value``."""
        from selenium.webdriver.support.select import Select  # noqa: PLC0415

        choice = Select(self.wait_for(css, timeout))
        if by_label:
            choice.select_by_visible_text(value)
        else:
            choice.select_by_value(value)

    def click(self, css: str, timeout: float = 10) -> None:
        """Click the element ``css`` once it can be clicked."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415
        from selenium.webdriver.support import expected_conditions  # noqa: PLC0415

        self._wait(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, css)),
            timeout,
            f"no clickable {css!r}",
        ).click()

    # -- evidence

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """Save a PNG of the window (or of the whole page, ``full_page``) to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if full_page:
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            path.write_bytes(base64.b64decode(shot["data"]))
        elif not self.driver.save_screenshot(str(path)):
            raise BrowserError(f"could not save a screenshot to {path}")
        return path

    def console_errors(self) -> list[str]:
        """The page's console errors and uncaught exceptions since the last call."""
        return [
            str(entry["message"])
            for entry in self.driver.get_log("browser")
            if entry.get("level") == "SEVERE"
        ]

    # -- inside

    def _wait(
        self, condition: Callable[[Any], _Found | Literal[False]], timeout: float, what: str
    ) -> _Found:
        from selenium.common.exceptions import TimeoutException  # noqa: PLC0415
        from selenium.webdriver.support.wait import WebDriverWait  # noqa: PLC0415

        try:
            return WebDriverWait(self.driver, timeout).until(condition)
        except TimeoutException as exc:
            raise AssertionError(f"{what} within {timeout} s on {self.url}") from exc

    def _log_tail(self) -> str:
        if self.home is None:
            return ""
        log = self.home / "chromedriver.log"
        try:
            tail = log.read_text(errors="replace")[-_LOG_TAIL:].strip()
        except OSError:
            return ""
        return f"\n--- chromedriver's log (tail) ---\n{tail}" if tail else ""

    def _remove(self) -> None:
        home, self.home = self.home, None
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)


def require_browser() -> None:
    """Skip a test without chromium and chromedriver on this machine; fail it under CI."""
    reason = _missing_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """An empty directory for the files a test leaves to look at (screenshots):
    ``$ZGRID_TEST_OUTPUT/<test>/`` when that variable is set, else
    ``<repository>/test-output/<test>/``, where ``<test>`` is the test's id made a file name.
    It is emptied when the test asks for it, and kept after the test."""
    base = Path(os.environ.get(OUTPUT_VARIABLE) or REPO / "test-output")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.nodeid).strip("-")
    directory = base / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the test module, quit after its last test."""
    require_browser()
    with Browser() as started:
        yield started


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """The test's output directory (:func:`screenshot_dir`)."""
    return screenshot_dir(request)

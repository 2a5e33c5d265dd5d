"""Debian's headless Chromium driven by Playwright, shared by every browser test.

``browser`` is one Chromium process per test session (``/usr/bin/chromium``, or
``$EVENTSTORE_TEST_CHROMIUM``; Playwright never downloads a browser). ``browser_page``
gives each test a fresh context and page that records every request the page makes and
refuses (aborts) any that would leave the machine, so a test can assert
``page_requests.external == []``. Console errors are collected too. A missing Chromium is
a failure, not a skip: CI installs it (``.ci/run``).

Use: ``pytest_plugins = ["tests.servers.browser"]`` in the test package's conftest.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("EVENTSTORE_TEST_CHROMIUM", "/usr/bin/chromium")
#: Hosts a page may talk to: the test servers on loopback.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
#: Schemes that never touch the network.
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})


@dataclass
class PageRequests:
    """Every URL a page requested, and the ones that would have left the machine."""

    urls: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def record(self, url: str) -> bool:
        """Remember ``url``; whether it stays on this machine."""
        self.urls.append(url)
        local = is_local(url)
        if not local:
            self.external.append(url)
        return local


def is_local(url: str) -> bool:
    """Whether a URL points at this machine (loopback) or needs no network at all."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOCAL_HOSTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (Debian's package, never a download)."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (the browser tests need it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # root in a container: Chromium's sandbox needs user namespaces it may not get
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page_requests() -> PageRequests:
    """What the test's pages requested (filled by ``browser_page``)."""
    return PageRequests()


@pytest.fixture
def browser_page(browser: Any, page_requests: PageRequests) -> Iterator[Any]:
    """A fresh page (own cookies and cache) whose requests are recorded; external ones abort."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(route: Any) -> None:
        if page_requests.record(route.request.url):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on(
        "console",
        lambda message: (
            page_requests.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: page_requests.console_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()

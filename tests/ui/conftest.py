"""One ``eventstore`` server for the browser tests: a SQLite store holding the known data
set plus a hostile conversation, with a token and a JWT secret; pages checked for
requests leaving the machine and for console errors (a CSP violation is one)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from eventstore.factory import create_tracker_store
from eventstore.server import ServerSettings
from tests.http.conftest import LiveServer
from tests.servers.browser import PageRequests
from tests.ui.dataset import BASE, DAY, conversations

TOKEN = "ui-test-token-0123456789"
JWT_SECRET = "ui-test-jwt-secret-0123456789-abcdef"
#: An id and texts that would run script or flip text if rendered as HTML.
HOSTILE_ID = '<img src=x onerror="window.__pwned=1">\u202eevil'
HOSTILE_TEXT = '<script>window.__pwned=1</script>"><b>bold</b> \u202eabc'
#: Where screenshots go: docs/ui/ when EVENTSTORE_UI_SCREENSHOTS is set, else a temp dir.
REPO = Path(__file__).resolve().parents[2]


def jwt_for(username: str, role: str = "user") -> str:
    return jwt.encode({"user": {"username": username, "role": role}}, JWT_SECRET, "HS256")


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The server, its store loaded with the known data set and the hostile conversation."""
    path = tmp_path_factory.mktemp("ui") / "ui.db"
    store = create_tracker_store({"type": "sql", "url": f"sqlite:///{path}"})
    for sender, events in conversations().items():
        store.append(sender, events)
    later = BASE + 10 * DAY
    store.append(
        HOSTILE_ID,
        [
            {
                "event": "user",
                "text": HOSTILE_TEXT,
                "timestamp": later,
                "parse_data": {"intent": {"name": "<i>x</i>", "confidence": 0.5}},
            },
            {"event": "bot", "text": "<img src=x onerror=alert(1)>", "timestamp": later + 1},
        ],
    )
    settings = ServerSettings(auth_token=TOKEN, jwt_secret=JWT_SECRET)
    server = LiveServer(store, settings)
    yield server
    server.stop()


@pytest.fixture
def ui(browser_page: Any, page_requests: PageRequests, ui_server: LiveServer) -> Iterator[Any]:
    """A page of the UI; afterwards: no request left the machine, no console error, no
    script ran from stored content."""
    dialogs: list[str] = []
    browser_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield browser_page
    assert page_requests.urls, "the test loaded no page"
    assert page_requests.external == []
    assert all(
        url.startswith(ui_server.url) or url.startswith("data:") for url in page_requests.urls
    )
    assert page_requests.console_errors == []
    assert dialogs == []
    if not browser_page.is_closed():
        assert browser_page.evaluate("window.__pwned") is None


def sign_in(page: Any, server: LiveServer, path: str = "/ui/", credential: str = TOKEN) -> None:
    """Open ``path`` with ``?token=`` (moved into the cookie and out of the address)."""
    joiner = "&" if "?" in path else "?"
    page.goto(f"{server.url}{path}{joiner}token={credential}")


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """Save a full-page screenshot (into docs/ui/ when EVENTSTORE_UI_SCREENSHOTS is set)."""
    folder = REPO / "docs" / "ui" if os.environ.get("EVENTSTORE_UI_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target

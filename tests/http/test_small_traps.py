"""Small traps of the HTTP API: PUT takes a list only; POST [] stores nothing, said once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from brokers.file import FileEventBroker
from eventstore import create_tracker_store
from eventstore.errors import BrokerUnavailable
from eventstore.server import ServerSettings
from tests.http.conftest import LiveServer

EVENT = {"event": "action", "name": "action_listen", "timestamp": 1.0}


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_put_refuses_a_single_object(server: LiveServer, client: httpx.Client) -> None:
    server.store.append("c", [EVENT, EVENT])
    response = client.put("/conversations/c/tracker/events", json=EVENT)
    assert response.status_code == 400
    assert response.json()["message"].startswith("PUT replaces the whole log: the body must be")
    assert server.store.version("c") == 2
    assert client.put("/conversations/c/tracker/events", json=[EVENT]).status_code == 200
    assert server.store.version("c") == 1


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_post_of_an_empty_list_stores_nothing_new_or_not(
    server: LiveServer, client: httpx.Client
) -> None:
    response = client.post("/conversations/new/tracker/events", json=[])
    assert response.status_code == 200 and response.json()["events"] == []
    assert server.store.version("new") == 0
    server.store.append("old", [EVENT])
    assert client.post("/conversations/old/tracker/events", json=[]).status_code == 200
    assert server.store.version("old") == 1
    stale = client.post("/conversations/old/tracker/events", json=[], headers={"If-Match": '"0"'})
    assert stale.status_code == 409


class DownBroker(FileEventBroker):
    """A file broker that is down: every publish fails."""

    def publish_many(self, messages: Any) -> None:
        raise BrokerUnavailable("the broker is down (test)")


@pytest.mark.parametrize("down", [False, True])
def test_shutdown_says_whether_the_broker_got_everything(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, down: bool
) -> None:
    broker = (DownBroker if down else FileEventBroker)(str(tmp_path / "events.log"))
    store = create_tracker_store({"type": "in_memory"}, broker)
    server = LiveServer(store, ServerSettings())
    with server.client() as client:
        assert client.post("/conversations/a/tracker/events", json=[EVENT]).status_code == 200
    caplog.set_level(logging.INFO, logger="eventstore.server")
    server.stop()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("store closed")]
    if down:
        assert said == ["store closed; unpublished events stay in the outbox"]
    else:
        assert said == ["store closed; every stored event published to the event broker"]


@pytest.mark.parametrize("backend", ["memory"])
def test_the_root_leads_a_browser_to_the_ui_and_tells_others_where_things_are(
    server: LiveServer, client: httpx.Client
) -> None:
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 303 and page.headers["location"] == "/ui/"
    assert client.get(page.headers["location"], headers={"Accept": "text/html"}).status_code == 200
    plain = client.get("/")
    assert plain.status_code == 200
    assert plain.json() == {
        "service": "eventstore",
        "ui": "/ui/",
        "docs": "/docs",
        "health": "/health",
    }
    assert client.get(plain.json()["health"]).status_code == 200

"""Hostile bytes in headers, paths and query strings: a 4xx naming the problem, never a 5xx,
and never a conversation stored under an id other than the one sent."""

from __future__ import annotations

import httpx
import pytest

from tests.http.conftest import LiveServer

HUGE = '"' + "9" * 4301 + '"'  # int() refuses strings over 4300 digits
EVENTS = [{"event": "action", "name": "action_listen", "timestamp": 1.0}]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_an_if_match_too_large_for_any_version_is_a_400(
    server: LiveServer, client: httpx.Client
) -> None:
    for method in ("POST", "PUT"):
        for value in (HUGE, '"9223372036854775808"', 'W/"' + "1" * 30 + '"'):
            response = client.request(
                method,
                "/conversations/big/tracker/events",
                json=EVENTS,
                headers={"If-Match": value},
            )
            assert response.status_code == 400, (method, value[:30], response.text[:200])
            assert response.json()["details"] == {"field": "If-Match", "location": "header"}
        response = client.request(
            method, f"/conversations/big/tracker/events?expected_version={'9' * 4301}", json=EVENTS
        )
        assert response.status_code == 400, response.text[:200]
    assert server.store.version("big") == 0
    ok = client.post("/conversations/big/tracker/events", json=EVENTS, headers={"If-Match": '"0"'})
    assert ok.status_code == 200


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_path_or_query_that_is_not_utf8_is_refused_never_aliased(
    server: LiveServer, client: httpx.Client
) -> None:
    for raw in ("x%FF", "x%FE", "x%C3", "%ED%A0%80"):  # bad bytes, truncated, a surrogate
        for method in ("POST", "PUT"):
            response = client.request(method, f"/conversations/{raw}/tracker/events", json=EVENTS)
            assert response.status_code == 400, (raw, response.text)
            assert "not valid UTF-8" in response.json()["message"]
        assert client.get(f"/conversations/{raw}/tracker").status_code == 400
        assert client.get(f"/events?sender_id={raw}").status_code == 400
    assert list(server.store.keys()) == []
    # U+FFFD itself, sent as valid UTF-8, is an ordinary id of its own
    response = client.post("/conversations/x%EF%BF%BD/tracker/events", json=EVENTS)
    assert response.status_code == 200
    assert list(server.store.keys()) == ["x\ufffd"]
    assert client.get("/events?sender_id=x%EF%BF%BD").json()["events"][0]["sender_id"] == "x\ufffd"

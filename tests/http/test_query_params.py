"""Query parameters: an unknown one is a 400 naming it; time parameters take the CLI's forms."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.http.conftest import LiveServer

DAY = datetime(2025, 6, 15, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("backend", ["memory"])
def test_unknown_query_parameters_are_a_400_naming_them(
    server: LiveServer, client: httpx.Client
) -> None:
    server.store.append("a", [{"event": "user", "text": "hi", "timestamp": DAY}])
    response = client.get("/events?type=user")
    assert response.status_code == 400
    body = response.json()
    assert body["message"].startswith(
        "unknown query parameter 'type' (did you mean 'type_name'?); this route takes: action,"
    )
    assert body["details"] == {"field": "type", "location": "query"}
    for path in (
        "/conversations/a/tracker?includeEvents=ALL",
        "/conversations/a/tracker?include_events=ALL&x=1&y=2",
        "/health?verbose=1",
    ):
        response = client.get(path)
        assert response.status_code == 400, path
    two = client.get("/conversations/a/tracker?include_events=ALL&x=1&y=2").json()["message"]
    assert two.startswith("unknown query parameter 'x', 'y'; this route takes: ")
    response = client.post("/conversations/a/tracker/events?expected=1", json=[])
    assert response.status_code == 400 and server.store.version("a") == 1
    # the parameters a route declares, and ?token=, still work
    assert client.get("/events?type_name=user&token=x").status_code == 200
    assert client.get("/conversations/a/tracker?include_events=ALL").status_code == 200


@pytest.mark.parametrize("backend", ["memory"])
def test_time_parameters_take_epoch_seconds_or_iso_8601(
    server: LiveServer, client: httpx.Client
) -> None:
    server.store.append("a", [{"event": "user", "text": "before", "timestamp": DAY - 1}])
    server.store.append("b", [{"event": "user", "text": "after", "timestamp": DAY + 1}])
    for since in (str(DAY), "2025-06-15", "2025-06-15T00:00:00Z", "2025-06-15T02:00:00%2B02:00"):
        events = client.get(f"/events?since={since}").json()["events"]
        assert [e["text"] for e in events] == ["after"], since
    assert [e["text"] for e in client.get("/events?until=2025-06-15").json()["events"]] == [
        "before"
    ]
    for bad in ("nan", "inf", "yesterday"):
        response = client.get(f"/events?since={bad}")
        assert response.status_code == 400
        assert response.json()["message"].startswith(
            "query parameter 'since' must be epoch seconds or an ISO 8601 date/time"
        )

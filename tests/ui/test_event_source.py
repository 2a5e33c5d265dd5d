"""``GET /events/stream`` read by a real browser's ``EventSource`` (Debian's Chromium).

The browser parses the messages itself: ids are positions, each ``data`` one JSON line,
and when the stream ends it reconnects on its own with ``Last-Event-ID``, resuming
exactly after the last event it received.
"""

from __future__ import annotations

from typing import Any

from eventstore.stores.base import EventQuery
from eventstore.testing import new_id, turn
from tests.http.conftest import LiveServer
from tests.ui.conftest import TOKEN, sign_in

OPEN = """url => {
  window.__got = []; window.__opens = 0; window.__drops = 0;
  const source = new EventSource(url);
  source.onopen = () => { window.__opens += 1; };
  source.onmessage = m => window.__got.push({id: m.lastEventId, data: JSON.parse(m.data)});
  source.onerror = () => { window.__drops += 1; };
  window.__source = source;
}"""


def stored(server: LiveServer, sender_id: str) -> list[dict[str, Any]]:
    """Every event of ``sender_id`` as the stream should deliver it, read with Python."""
    return [
        {"id": str(event.position), "data": event.as_message()}
        for event in server.store.query(EventQuery(sender_id=sender_id))
    ]


def test_event_source_gets_every_event_and_resumes_after_the_stream_ends(
    ui: Any, ui_server: LiveServer
) -> None:
    sign_in(ui, ui_server)  # a page of the service's own origin
    sid = new_id("browser-stream")
    ui_server.store.append(sid, turn(0))
    ui.evaluate(OPEN, f"/events/stream?sender_id={sid}&token={TOKEN}")
    first = len(turn(0))
    ui.wait_for_function("n => window.__got.length === n", arg=first)
    ui_server.store.append(sid, turn(1))  # live, while the stream is open
    ui.wait_for_function("n => window.__got.length === n", arg=2 * first)

    stopping = ui_server.app.state.stopping
    stopping.set()  # the server ends its streams, as on SIGTERM
    try:
        ui.wait_for_function("() => window.__drops >= 1")
        ui_server.store.append(sid, turn(2))  # stored while the browser is disconnected
    finally:
        stopping.clear()
    ui.wait_for_function("n => window.__got.length >= n && window.__opens >= 2", arg=3 * first)
    got = ui.evaluate("window.__got")
    ui.evaluate("window.__source.close()")
    assert got == stored(ui_server, sid)  # in order, no gap, no duplicate across reconnects

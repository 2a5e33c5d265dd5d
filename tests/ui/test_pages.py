"""The pages in Debian's headless Chromium: list, search, transcript, live updates,
dashboard numbers, auth, hostile content and accessibility (axe-core)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.http.conftest import LiveServer
from tests.servers.browser import PageRequests
from tests.ui.conftest import HOSTILE_ID, HOSTILE_TEXT, TOKEN, jwt_for, screenshot, sign_in
from tests.ui.dataset import EXPECTED, LIST_ORDER


def senders(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("table.conversations a.sender").all_inner_texts()]


def post_events(server: LiveServer, sender: str, events: list[dict[str, Any]]) -> None:
    """Append through the HTTP API, as a bot runtime would."""
    response = httpx.post(
        f"{server.url}/conversations/{sender}/tracker/events",
        json=events,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_list_search_and_filters(ui: Any, ui_server: LiveServer, tmp_path: Path) -> None:
    sign_in(ui, ui_server)
    assert ui.url == f"{ui_server.url}/ui/"  # the token left the address bar
    assert TOKEN not in ui.content()
    assert set(LIST_ORDER) <= set(senders(ui))
    screenshot(ui, "list", tmp_path)
    ui.goto(f"{ui_server.url}/ui/?since=2033-05-19&until=2033-05-20")
    assert senders(ui) == LIST_ORDER
    row = ui.locator("table.conversations tbody tr").first
    assert row.locator("td").all_inner_texts()[2:] == ["2", "4", "goodbye"]

    ui.get_by_label("Text in user messages").fill("TABLE")
    ui.get_by_role("button", name="Apply").click()
    ui.wait_for_url("**text=TABLE**")
    assert senders(ui) == ["carol", "alice"]

    ui.get_by_label("Text in user messages").fill("")
    ui.get_by_label("Fallback or confidence below").check()
    ui.get_by_role("button", name="Apply").click()
    ui.wait_for_url("**flagged=1**")
    assert "bob" in senders(ui) and "alice" not in senders(ui)

    ui.goto(f"{ui_server.url}/ui/?type_name=rewind")
    assert senders(ui) == ["carol"]


def test_transcript_state_download_and_live_event(
    ui: Any, ui_server: LiveServer, tmp_path: Path
) -> None:
    sign_in(ui, ui_server)
    ui.get_by_role("link", name="carol", exact=True).click()
    ui.wait_for_url("**/ui/conversations/carol")
    user_bubbles = ui.locator("li.bubble.user")
    assert user_bubbles.count() == 4
    assert "intent book_table 0.91" in " ".join(user_bubbles.nth(2).inner_text().split())
    # the rewind takes back the last user message and everything back to the action
    # before it (Rasa's applied events); no action_listen came between, so both messages
    undone = ["undone" in (user_bubbles.nth(i).get_attribute("class") or "") for i in range(4)]
    assert undone == [False, True, True, False]
    assert ui.locator("li.kind-session_started").count() == 2
    assert ui.locator("li.kind-rewind.emph").count() == 1

    ui.get_by_role("button", name="State after #7", exact=True).click()
    values = ui.locator("#state-values")
    values.wait_for(state="visible")
    assert values.locator('[data-key="latest_intent"]').inner_text() == "book_table (0.91)"
    ui.get_by_role("button", name="State after #9", exact=True).click()
    expect(values.locator('[data-key="latest_intent"]')).to_have_text("goodbye (0.92)")
    ui.get_by_text("JSON #1", exact=True).click()
    assert '"name": "action_session_start"' in ui.locator("li#e1 pre").inner_text()

    with ui.expect_download() as download:
        ui.get_by_role("link", name="Download (JSON lines)").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 10))
    assert json.loads(lines[2])["text"] == "bye"

    post_events(ui_server, "carol", [{"event": "bot", "text": "See you soon, carol!"}])
    ui.get_by_text("See you soon, carol!", exact=True).wait_for()
    assert ui.locator("li.bubble.bot .text bdi").last.inner_text() == "See you soon, carol!"
    screenshot(ui, "transcript", tmp_path)


def test_dashboard_draws_the_known_numbers(ui: Any, ui_server: LiveServer, tmp_path: Path) -> None:
    sign_in(ui, ui_server, "/ui/dashboard?since=2033-05-19&until=2033-05-20")
    ui.wait_for_selector("body[data-charts-drawn='true']")
    drawn = ui.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('canvas')].map(c => {
             const chart = Chart.getChart(c);
             return [c.id, {labels: chart.data.labels,
                            data: chart.data.datasets.map(d => d.data)}];
           }))"""
    )
    assert drawn["chart-per-day"]["labels"] == ["2033-05-19", "2033-05-20"]
    assert drawn["chart-per-day"]["data"] == [
        EXPECTED["conversations_per_day"],
        EXPECTED["sessions_per_day"],
    ]
    assert drawn["chart-intents"]["labels"] == EXPECTED["top_intents"]["labels"]
    assert drawn["chart-intents"]["data"] == [EXPECTED["top_intents"]["counts"]]
    assert drawn["chart-confidence"]["data"] == [EXPECTED["confidence"]]
    assert drawn["chart-rates"]["data"] == [EXPECTED["fallback_rate"], EXPECTED["escalation_rate"]]
    assert drawn["chart-turns"]["data"] == [EXPECTED["turns_per_session"]]
    hours = {h: n for h, n in enumerate(drawn["chart-hours"]["data"][0]) if n}
    assert hours == EXPECTED["busiest_hours"]
    assert ui.locator("#total-turns").inner_text() == "8"
    # every chart really drew pixels
    blank = ui.evaluate(
        """() => [...document.querySelectorAll('canvas')].filter(c => {
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) return false; }
             return true;
           }).map(c => c.id)"""
    )
    assert blank == []
    screenshot(ui, "dashboard", tmp_path)


def test_live_tail_shows_new_events_with_filters(
    ui: Any, ui_server: LiveServer, tmp_path: Path
) -> None:
    sign_in(ui, ui_server, "/ui/live?type_name=bot")
    ui.get_by_text("Waiting for new events").wait_for()
    post_events(
        ui_server,
        "dave",
        [
            {
                "event": "user",
                "text": "is anyone there?",
                "parse_data": {"intent": {"name": "ask"}},
            },
            {"event": "bot", "text": "Yes, dave, I am here."},
        ],
    )
    ui.get_by_text("Yes, dave, I am here.").wait_for()
    assert ui.get_by_text("is anyone there?").count() == 0  # filtered out: type user
    assert ui.locator("#live-rows tr").count() == 1
    screenshot(ui, "live", tmp_path)


def test_auth_refuses_a_missing_token_and_hides_other_users(
    ui: Any, ui_server: LiveServer, tmp_path: Path, page_requests: PageRequests
) -> None:
    response = ui.goto(f"{ui_server.url}/ui/")
    assert response.status == 401
    assert ui.locator("table.conversations").count() == 0
    assert ui.get_by_role("heading", name="Sign in").is_visible()
    screenshot(ui, "login", tmp_path)
    ui.get_by_label("Token or JWT").fill("wrong")
    ui.get_by_role("button", name="Sign in").click()
    assert "not valid" in ui.get_by_role("alert").inner_text()
    assert httpx.get(f"{ui_server.url}/ui/api/live", timeout=5).status_code == 401

    ui.get_by_label("Token or JWT").fill(jwt_for("alice"))
    ui.get_by_role("button", name="Sign in").click()
    ui.wait_for_url(f"{ui_server.url}/ui/")
    assert senders(ui) == ["alice"]
    response = ui.goto(f"{ui_server.url}/ui/conversations/bob")
    assert response.status == 403
    assert "bob" not in ui.locator("main").inner_text().replace("'bob'", "")
    ui.goto(f"{ui_server.url}/ui/dashboard?since=2033-05-19&until=2033-05-20")
    assert ui.locator("#total-conversations").inner_text() == "1"

    ui.get_by_role("button", name="Sign out").click()
    ui.wait_for_url("**/ui/login")
    assert ui.goto(f"{ui_server.url}/ui/").status == 401
    # the browser logs each refused page as a console error: exactly the ones refused here
    refused = [e for e in page_requests.console_errors if "Failed to load resource" in e]
    assert [e.rsplit("status of ", 1)[1] for e in refused] == [
        "401 (Unauthorized)",
        "401 (Unauthorized)",
        "403 (Forbidden)",
        "401 (Unauthorized)",
    ]
    page_requests.console_errors[:] = [e for e in page_requests.console_errors if e not in refused]


def test_hostile_content_is_text(ui: Any, ui_server: LiveServer) -> None:
    sign_in(ui, ui_server, "/ui/?sender=evil")
    link = ui.locator("table.conversations a.sender").first
    assert link.inner_text() == HOSTILE_ID.replace("\u202e", "[U+202E]")
    assert ui.locator("table.conversations img").count() == 0
    link.click()
    ui.wait_for_selector("li.bubble.user")
    text = ui.locator("li.bubble.user .text bdi").inner_text()
    assert text == HOSTILE_TEXT.replace("\u202e", "[U+202E]")
    assert ui.locator("main script, main img, main b").count() == 0
    assert ui.locator("h1 .sender").inner_text() == HOSTILE_ID.replace("\u202e", "[U+202E]")
    # the tracker state panel renders through textContent
    ui.get_by_role("button", name="State after #1", exact=True).click()
    expect(ui.locator('[data-key="latest_intent"]')).to_have_text("<i>x</i> (0.50)")
    ui.goto(f"{ui_server.url}/ui/live")
    post_events(
        ui_server, "mallory", [{"event": "bot", "text": "<script>window.__pwned=1</script>"}]
    )
    ui.get_by_text("<script>window.__pwned=1</script>").wait_for()


@pytest.mark.parametrize(
    "path",
    [
        "/ui/",
        "/ui/conversations/alice",
        "/ui/dashboard?since=2033-05-19&until=2033-05-20",
        "/ui/live",
    ],
)
def test_accessibility(ui: Any, ui_server: LiveServer, path: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    sign_in(ui, ui_server, path)
    ui.wait_for_load_state("networkidle")
    results = Axe().run(ui)
    assert len(results.response["passes"]) > 10  # axe really checked the page
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    # keyboard: the skip link comes first and every control is reachable
    ui.keyboard.press("Tab")
    assert ui.evaluate("document.activeElement.textContent") == "Skip to content"

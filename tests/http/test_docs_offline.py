"""``/docs`` with no internet: Swagger UI's assets come from this server, and the page
renders the API's operations in headless Chromium while every external request fails."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.http.conftest import LiveServer
from tests.servers.browser import PageRequests

TOKEN = "docs-offline-token-0123456789abcdef"


@pytest.mark.parametrize("backend", ["memory"])
def test_docs_page_loads_only_local_assets(server: LiveServer, client: httpx.Client) -> None:
    page = client.get("/docs").text
    assert "https://" not in page and "http://" not in page
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        assert f'"/docs/assets/{asset}"' in page
        response = client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert len(response.content) > 10_000


def test_swagger_ui_renders_the_operations_without_network(
    start_server: Any, browser_page: Any, page_requests: PageRequests
) -> None:
    server = start_server("memory", auth_token=TOKEN)
    browser_page.goto(f"{server.url}/docs?token={TOKEN}")  # the page drops it from the URL
    browser_page.wait_for_selector(".opblock-summary", state="visible")
    paths = browser_page.locator(".opblock-summary-path").all_inner_texts()
    assert "/events" in paths and "/health" in paths
    assert any(p.startswith("/conversations/") for p in paths)
    assert browser_page.locator(".info .title").inner_text().startswith("eventstore")
    assert page_requests.external == []
    assert f"{server.url}/docs/assets/swagger-ui-bundle.js" in page_requests.urls
    assert page_requests.console_errors == []
    assert TOKEN not in browser_page.url

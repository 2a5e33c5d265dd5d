"""The Swagger page: the token is never written into it; its script sends it as a header.

The page's inline script runs under Node with a stand-in ``SwaggerUIBundle`` (the real one
renders in Chromium in test_docs_offline.py), so what it does with a token in the URL is
checked, not assumed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from tests.http.conftest import LiveServer

TOKEN = "docs-token-0123456789abcdef"
ORIGIN = "http://127.0.0.1:5005"

#: Runs the page's script (stdin) in a fake browser window at ``process.argv[1]``; prints
#: the address-bar rewrites and the Authorization header added to a few requests.
HARNESS = """
const page = new URL(process.argv[1]);
const replaced = [];
globalThis.window = {
  location: {href: page.href, hash: page.hash, search: page.search,
             pathname: page.pathname, origin: page.origin},
  history: {replaceState: (state, title, url) => replaced.push(url)},
};
let config = null;
globalThis.SwaggerUIBundle = (options) => { config = options; return {}; };
SwaggerUIBundle.presets = {apis: "apis"};
SwaggerUIBundle.SwaggerUIStandalonePreset = "standalone";
let script = "";
process.stdin.on("data", (chunk) => { script += chunk; });
process.stdin.on("end", () => {
  eval(script);
  const sent = (url, headers = {}) =>
    config.requestInterceptor({url, headers}).headers.Authorization || null;
  console.log(JSON.stringify({
    schema_url: config.url,
    replaced,
    schema: sent("/openapi.json"),
    same_origin: sent(page.origin + "/events?limit=1"),
    other_origin: sent("https://elsewhere.example/steal"),
    pasted: sent("/events", {Authorization: "Bearer pasted-in-authorize"}),
  }));
});
"""


def run_page_script(html: str, url: str) -> dict[str, Any]:
    """What the page's inline script does when the browser shows ``url``."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to run the Swagger page's script (apt-get install nodejs)")
    inline = [s for s in re.findall(r"<script>(.*?)</script>", html, flags=re.S) if s.strip()]
    assert len(inline) == 1, html
    done = subprocess.run(
        [node, "-e", HARNESS, url], input=inline[0], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_docs_page_never_holds_the_token(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(auth_token=TOKEN)
    with server.client() as client:
        assert client.get("/docs").status_code == 401  # the page needs credentials too
        by_query = client.get("/docs", params={"token": TOKEN})
        by_header = client.get("/docs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert by_query.status_code == by_header.status_code == 200
    assert TOKEN not in by_query.text
    assert by_query.content == by_header.content  # the same static page either way
    assert by_query.headers["cache-control"] == "no-store"
    assert by_query.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("opened", "left"),
    [
        (f"/docs?token={TOKEN}", "/docs"),
        (f"/docs#token={TOKEN}", "/docs"),
        (f"/docs?x=1&token={TOKEN}#/events", "/docs?x=1"),
    ],
)
def test_docs_script_moves_the_token_from_the_url_into_a_header(
    start_server: Callable[..., LiveServer], opened: str, left: str
) -> None:
    server = start_server(auth_token=TOKEN)
    with server.client() as client:
        html = client.get("/docs", params={"token": TOKEN}).text
        seen = run_page_script(html, ORIGIN + opened)
        # the header the script sends is accepted by the schema route it fetches
        schema = client.get(seen["schema_url"], headers={"Authorization": seen["schema"]})
    assert seen["replaced"] == [left], "the token stays in the address bar"
    assert seen["schema_url"] == "/openapi.json"
    assert seen["schema"] == seen["same_origin"] == f"Bearer {TOKEN}"
    assert seen["other_origin"] is None, "the token would go to another site"
    assert seen["pasted"] == "Bearer pasted-in-authorize"
    assert schema.status_code == 200, schema.text


def test_docs_script_without_a_token_sends_none(start_server: Callable[..., LiveServer]) -> None:
    server = start_server()
    with server.client() as client:
        html = client.get("/docs").text
    seen = run_page_script(html, ORIGIN + "/docs#/events/query_events_events_get")
    assert seen["replaced"] == []  # Swagger's own deep links are left alone
    assert seen["schema"] is None and seen["same_origin"] is None


def test_schema_offers_bearer_auth_on_every_route_but_health(
    start_server: Callable[..., LiveServer],
) -> None:
    """Swagger's Authorize button takes the token or a JWT; /openapi.json still needs it."""
    server = start_server(auth_token=TOKEN)
    with server.client() as client:
        assert client.get("/openapi.json").status_code == 401
        schema = client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "security" not in schema["paths"]["/events"]["get"]  # the global one applies

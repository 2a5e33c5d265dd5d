"""Auth of every HTTP route, found from the running app itself (so new routes are covered).

The routes are read from ``/openapi.json`` (fetched with the token) plus the app's routes
that are hidden from the schema (``/docs``, ``/openapi.json``). For each one but
``/health``: missing, wrong, expired and foreign-signed credentials get 401 and change
nothing; a JWT ``user`` gets 403 on another user's conversation and sees no other user's
data anywhere; the token and an admin JWT succeed. A ``?token=`` never shows up in the
access log or in a response body.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr

from eventstore import create_tracker_store
from eventstore.server import ServerSettings
from tests.http.conftest import LiveServer, Running
from tests.reliability.test_http_hostile import (
    HTTP_BACKENDS,
    PARAM,
    PLAIN,
    app_routes,
    one_line_server_errors,
    store_config,
    tracker_path,
)

TOKEN = "tok-" + uuid.uuid4().hex
SECRET = "jwt-secret-" + uuid.uuid4().hex * 2
OTHER_SECRET = "not-the-secret-" + uuid.uuid4().hex * 2
VICTIM = "victim-" + uuid.uuid4().hex[:8]
MALLORY = "mallory-" + uuid.uuid4().hex[:8]
#: Text only the victim's conversation holds: any response that contains it leaks it.
VICTIM_TEXT = "victim's private words " + uuid.uuid4().hex
WRITE_BODY = [{"event": "user", "text": "hello", "parse_data": {"intent": {"name": "greet"}}}]
METHODS = {"get", "post", "put", "patch", "delete"}


def token_jwt(role: str, username: str | None, secret: str = SECRET, **claims: Any) -> str:
    """A JWT in Rasa's shape: ``{"user": {"username", "role"}}`` plus ``claims``."""
    payload = {"user": {"username": username, "role": role}, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def unsigned_jwt() -> str:
    """An admin JWT with ``alg: none`` (no signature at all)."""
    return jwt.encode({"user": {"username": "root", "role": "admin"}}, "", algorithm="none")


#: (name, query parameters, headers) of credentials that must all be refused with 401.
BAD_CREDENTIALS: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("missing", {}, {}),
    ("wrong-token-query", {"token": "wrong"}, {}),
    ("wrong-token-bearer", {}, bearer("wrong")),
    ("token-prefix", {"token": TOKEN[:-1]}, {}),
    ("token-with-suffix", {"token": TOKEN + "x"}, {}),
    ("empty-token", {"token": ""}, {}),
    ("token-as-basic-auth", {}, {"Authorization": f"Basic {TOKEN}"}),
    ("expired-admin-jwt", {}, bearer(token_jwt("admin", "root", exp=int(time.time()) - 60))),
    ("admin-jwt-other-secret", {}, bearer(token_jwt("admin", "root", secret=OTHER_SECRET))),
    ("admin-jwt-alg-none", {}, bearer(unsigned_jwt())),
    (
        "admin-jwt-not-yet-valid",
        {},
        bearer(token_jwt("admin", "root", nbf=int(time.time()) + 86_400 * 365)),
    ),
    ("admin-jwt-as-query-token", {"token": token_jwt("admin", "root")}, {}),
    ("garbage-jwt", {}, bearer("a.b.c")),
]
#: Credentials that act as an admin.
GOOD_CREDENTIALS: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("token-query", {"token": TOKEN}, {}),
    ("token-bearer", {}, bearer(TOKEN)),
    ("admin-jwt", {}, bearer(token_jwt("admin", "root"))),
]


@dataclass(frozen=True)
class Route:
    """One method on one path template of the app."""

    method: str
    path: str

    @property
    def conversation(self) -> bool:
        """Whether the route acts on one conversation named in its path."""
        return "{conversation_id}" in self.path

    def url(self, conversation_id: str) -> str:
        """The path with its parameters filled in (every parameter must be known here)."""
        names = {m.group(1) for m in PARAM.finditer(self.path)}
        unknown = names - {"conversation_id"}
        if unknown:
            pytest.fail(f"{self}: path parameters {unknown} need a value in test_http_auth.py")
        prefix, suffix = self.path.split("{conversation_id}", 1)
        return prefix + tracker_path(conversation_id, suffix).removeprefix("/conversations/")

    def send(
        self,
        client: httpx.Client,
        conversation_id: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = WRITE_BODY if self.method in ("POST", "PUT", "PATCH") else None
        url = self.url(conversation_id) if self.conversation else self.path
        request = client.build_request(self.method, url, params=params, headers=headers, json=body)
        response = client.send(request, stream=True)
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.read()
                return response
            # an accepted event stream never ends: its status, headers and first message
            first = next(response.iter_bytes(), b"")
        finally:
            response.close()
        return httpx.Response(
            response.status_code, headers=response.headers, content=first, request=request
        )

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def discover(server: LiveServer) -> list[Route]:
    """Every route: the OpenAPI schema's, plus the app's routes the schema leaves out."""
    with server.client() as client:
        response = client.get("/openapi.json", params={"token": TOKEN})
    assert response.status_code == 200, response.text
    found = {
        (method.upper(), PARAM.sub(r"{\1}", path))
        for path, operations in response.json()["paths"].items()
        for method in operations
        if method in METHODS
    }
    from_app = set(app_routes(server.app.routes))
    assert found <= from_app, f"the schema lists routes the app does not serve: {found - from_app}"
    routes = [Route(m, p) for m, p in sorted(found | from_app)]
    # the discovery itself works: the routes every deployment has are there
    for known in ("GET /health", "GET /conversations/{conversation_id}/tracker", "GET /events"):
        assert known in {str(r) for r in routes}, routes
    return routes


# -- the server -----------------------------------------------------------------------------
def serve_victim(
    request: pytest.FixtureRequest, directory: Path, settings: ServerSettings
) -> Iterator[LiveServer]:
    """A server over the backend ``request.param`` whose victim conversation holds VICTIM_TEXT."""
    store = create_tracker_store(store_config(str(request.param), request, directory))
    store.append(VICTIM, [{"event": "user", "text": VICTIM_TEXT}])
    with one_line_server_errors():
        server = LiveServer(store, settings)
        yield server
        server.stop()


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server with a token and a JWT secret."""
    settings = ServerSettings(auth_token=SecretStr(TOKEN), jwt_secret=SecretStr(SECRET))
    yield from serve_victim(request, tmp_path_factory.mktemp("auth"), settings)


@pytest.fixture(scope="module")
def routes(auth_server: LiveServer) -> list[Route]:
    return discover(auth_server)


@pytest.fixture
def client(auth_server: LiveServer) -> Iterator[httpx.Client]:
    with auth_server.client(**PLAIN) as http:
        yield http


#: Routes anyone may call: the health check, and the UI's sign-in form and sign-out
#: (which only set or clear the browser's cookie; docs/ui.md).
PUBLIC = frozenset(
    {"GET /", "GET /health", "GET /ui/login", "POST /ui/login", "POST /ui/logout"}
)  # "/" only says where the pages, docs and health check are


def protected(routes: list[Route]) -> list[Route]:
    return [r for r in routes if str(r) not in PUBLIC]


# -- refused ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "headers"), BAD_CREDENTIALS, ids=[c[0] for c in BAD_CREDENTIALS]
)
def test_bad_credentials_get_401_on_every_route(
    auth_server: LiveServer,
    routes: list[Route],
    client: httpx.Client,
    name: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    before = auth_server.store.read(VICTIM)
    wrong = []
    for route in protected(routes):
        response = route.send(client, VICTIM, params, headers)
        if response.status_code != 401:
            wrong.append(f"{route} -> {response.status_code} {response.text[:120]}")
            continue
        body = response.json()
        assert (body["status"], body["reason"], body["code"]) == (
            "failure",
            "NotAuthenticated",
            401,
        )
        assert response.headers.get("WWW-Authenticate") == "Bearer", route
        assert VICTIM_TEXT not in response.text
        if route.method == "GET":  # HEAD, where served, runs the same route
            head = Route("HEAD", route.path).send(client, VICTIM, params, headers)
            if head.status_code not in (401, 405):
                wrong.append(f"HEAD {route.path} -> {head.status_code}")
    assert not wrong, f"{name} was not refused with 401:\n" + "\n".join(wrong)
    assert auth_server.store.read(VICTIM) == before, "a refused request changed the conversation"


def test_health_needs_no_credentials(routes: list[Route], client: httpx.Client) -> None:
    assert "GET /health" in {str(r) for r in routes}
    response = client.get("/health")
    assert response.status_code == 200
    assert VICTIM not in response.text and VICTIM_TEXT not in response.text


# -- a JWT user -----------------------------------------------------------------------------
def test_jwt_user_gets_403_on_another_users_conversation(
    auth_server: LiveServer, routes: list[Route], client: httpx.Client
) -> None:
    headers = bearer(token_jwt("user", MALLORY))
    before = auth_server.store.read(VICTIM)
    wrong = []
    conversation_routes = [r for r in routes if r.conversation]
    assert conversation_routes
    for route in conversation_routes:
        response = route.send(client, VICTIM, headers=headers)
        if response.status_code != 403 or response.json()["reason"] != "NotAuthorized":
            wrong.append(f"{route} -> {response.status_code} {response.text[:120]}")
        assert VICTIM_TEXT not in response.text, f"{route} leaked the victim's events"
    assert not wrong, "a user reached another user's conversation:\n" + "\n".join(wrong)
    assert auth_server.store.read(VICTIM) == before
    # ... and the same routes do work on the user's own conversation
    for route in sorted(conversation_routes, key=lambda r: r.method == "DELETE"):
        response = route.send(client, MALLORY, headers=headers)
        assert response.status_code == 200, f"{route} on their own conversation: {response.text}"


def test_jwt_user_sees_no_other_users_data_on_any_route(
    auth_server: LiveServer, routes: list[Route], client: httpx.Client
) -> None:
    """Routes that are not about one conversation: refused (403), or nothing of the victim."""
    headers = bearer(token_jwt("user", MALLORY))
    auth_server.store.append(MALLORY, [{"event": "user", "text": "mine"}])
    leaks = []
    for route in protected(routes):
        if route.conversation:
            continue
        response = route.send(client, VICTIM, headers=headers)
        assert response.status_code < 500, f"{route}: {response.text}"
        if response.status_code == 200 and (
            VICTIM in response.text or VICTIM_TEXT in response.text
        ):
            leaks.append(f"{route} -> 200 with the victim's data")
    assert not leaks, "\n".join(leaks)
    # the query API: other conversations are refused, their own is theirs alone
    for params in ({"sender_id": VICTIM}, {}, {"format": "jsonl"}, {"sender_id": ""}):
        response = client.get("/events", params=params, headers=headers)
        assert response.status_code == 403, (params, response.text)
    streamed = client.get("/events", headers={**headers, "Accept": "application/x-ndjson"})
    assert streamed.status_code == 403, streamed.text
    own = client.get("/events", params={"sender_id": MALLORY}, headers=headers)
    assert own.status_code == 200
    assert {e["sender_id"] for e in own.json()["events"]} == {MALLORY}
    # a repeated parameter: whichever value is used, it is checked and queried alike
    for twice in ([MALLORY, VICTIM], [VICTIM, MALLORY]):
        response = client.get("/events", params={"sender_id": twice}, headers=headers)
        assert response.status_code in (200, 403), response.text
        assert VICTIM_TEXT not in response.text


#: Usernames a store might read as a pattern or an operator rather than one literal id.
PATTERN_USERNAMES = ["*", "%", "victim-[a-z0-9]*", ".*", '{"$ne": null}']
#: Usernames that differ from the victim's id, but that a case-, accent- or
#: space-insensitive comparison (a SQL collation, say) would call equal.
LOOKALIKES: dict[str, Callable[[str], str]] = {
    "upper-case": str.upper,
    "trailing-space": lambda victim: victim + " ",
    "accented": lambda victim: victim.replace("i", "\u00ed", 1),
    "nbsp-prefix": lambda victim: "\u00a0" + victim,
}


@pytest.fixture(scope="module", params=HTTP_BACKENDS)
def any_backend_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A JWT-only server over each backend."""
    settings = ServerSettings(jwt_secret=SecretStr(SECRET))
    yield from serve_victim(request, tmp_path_factory.mktemp("users"), settings)


@pytest.mark.parametrize("username", PATTERN_USERNAMES + list(LOOKALIKES))
def test_a_username_is_never_a_pattern(any_backend_server: LiveServer, username: str) -> None:
    """A user named ``*``, ``{"$ne": null}`` or ``ALICE`` reads their own conversation only."""
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    any_backend_server.store.append(victim, [{"event": "user", "text": VICTIM_TEXT}])
    if username in LOOKALIKES:
        username = LOOKALIKES[username](victim)
    headers = bearer(token_jwt("user", username))
    with any_backend_server.client(headers=headers, **PLAIN) as client:
        for url, params in (
            ("/events", {"sender_id": username}),
            ("/events", {"sender_id": username, "format": "jsonl"}),
            (tracker_path(username, "/tracker"), {"include_events": "ALL"}),
        ):
            response = client.get(url, params=params)
            assert response.status_code == 200, (url, response.text)
            assert VICTIM_TEXT not in response.text, f"user {username!r} read the victim via {url}"
        assert client.delete(tracker_path(username, "")).status_code == 200
    assert any_backend_server.store.read(victim)[0]["text"] == VICTIM_TEXT, "deleted by another"


# -- accepted ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "headers"), GOOD_CREDENTIALS, ids=[c[0] for c in GOOD_CREDENTIALS]
)
def test_token_and_admin_jwt_succeed_on_every_route(
    routes: list[Route],
    client: httpx.Client,
    name: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    wrong = []
    for route in protected(routes):
        response = route.send(client, f"admin-{name}-{uuid.uuid4().hex[:8]}", params, headers)
        if response.status_code != 200:
            wrong.append(f"{route} -> {response.status_code} {response.text[:120]}")
    assert not wrong, f"{name} was refused:\n" + "\n".join(wrong)


# -- the token stays secret ------------------------------------------------------------------
def test_query_token_is_never_logged_nor_echoed(tmp_path: Path) -> None:
    """Every route and a few failing requests, all with ``?token=``: the access log shows
    ``token=***`` and no response body holds the token."""
    run = Running(env={"EVENTSTORE_AUTH_TOKEN": TOKEN, "EVENTSTORE_JWT_SECRET": SECRET})
    try:
        schema = httpx.get(f"{run.url}/openapi.json", params={"token": TOKEN}).json()
        requests: list[tuple[str, str, dict[str, Any]]] = []
        for path, operations in schema["paths"].items():
            for method in operations:
                route = Route(method.upper(), PARAM.sub(r"{\1}", path))
                url = route.url("log-check") if route.conversation else route.path
                requests.append((route.method, url, {}))
        requests += [
            ("GET", "/no-such-route", {}),
            ("PATCH", "/events", {}),
            ("GET", "/events", {"limit": "many"}),
            ("GET", "/events", {"cursor": "not-a-cursor"}),
            ("POST", "/conversations/log-check/tracker/events", {"content": b"{not json"}),
        ]
        echoed = []
        with httpx.Client(base_url=run.url, timeout=10) as client:
            for method, url, extra in requests:
                json_body = WRITE_BODY if method in ("POST", "PUT") and not extra else None
                for params in (
                    {"token": TOKEN},
                    {"token": TOKEN, "x": "1"},
                    {"token": "x" + TOKEN},
                ):
                    request = client.build_request(
                        method,
                        url,
                        params={**params, **{k: v for k, v in extra.items() if k != "content"}},
                        content=extra.get("content"),
                        json=json_body,
                    )
                    response = client.send(request, stream=True)
                    try:  # an open event stream: its headers, not its endless body
                        kind = response.headers.get("content-type", "")
                        body = b"" if kind.startswith("text/event-stream") else response.read()
                    finally:
                        response.close()
                    if TOKEN in str(response.headers) or TOKEN.encode() in body:
                        echoed.append(f"{method} {url} -> {response.status_code}")
        assert not echoed, "the token came back in a response body:\n" + "\n".join(echoed)
    finally:
        code = run.stop()
    assert code == 0
    assert "token=***" in run.output, run.output[-2000:]
    assert TOKEN not in run.output


def test_docs_page_does_not_embed_the_token(client: httpx.Client) -> None:
    response = client.get("/docs", params={"token": TOKEN})
    assert response.status_code == 200
    assert TOKEN not in response.text

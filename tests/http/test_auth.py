"""Auth as in Rasa: a token (``?token=`` or Bearer) or a JWT with role admin/user."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from eventstore.testing import new_id, session_start, user
from tests.http.conftest import LiveServer

TOKEN = "s3cret-token"
SECRET = "jwt-signing-secret-" + "x" * 64


def jwt_for(role: str | None, username: str | None = None, **claims: Any) -> str:
    payload: dict[str, Any] = dict(claims)
    if role is not None:
        payload["user"] = {"username": username, "role": role}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def protected_requests(cid: str) -> list[tuple[str, str, Any]]:
    """Every route but /health, with a valid request for each."""
    return [
        ("GET", f"/conversations/{cid}/tracker", None),
        ("POST", f"/conversations/{cid}/tracker/events", user("hi")),
        ("PUT", f"/conversations/{cid}/tracker/events", session_start()),
        ("DELETE", f"/conversations/{cid}", None),
        ("GET", "/conversations", None),
        ("GET", "/events", None),
        ("GET", "/version", None),
        ("GET", "/metrics", None),
        ("GET", "/docs", None),
        ("GET", "/openapi.json", None),
    ]


def test_without_auth_settings_every_route_is_open(
    start_server: Callable[..., LiveServer], backend: str
) -> None:
    server = start_server(backend)
    with server.client() as client:
        for method, path, body in protected_requests(new_id("open")):
            response = client.request(method, path, json=body)
            assert response.status_code == 200, (method, path, response.text)


def test_token_in_query_or_bearer_header(
    start_server: Callable[..., LiveServer], backend: str
) -> None:
    server = start_server(backend, auth_token=TOKEN)
    cid = new_id("token")
    with server.client() as client:
        for method, path, body in protected_requests(cid):
            missing = client.request(method, path, json=body)
            assert missing.status_code == 401, (method, path)
            assert missing.json()["reason"] == "NotAuthenticated"
            wrong = client.request(method, path, json=body, params={"token": "nope"})
            assert wrong.status_code == 401, (method, path)
            by_query = client.request(method, path, json=body, params={"token": TOKEN})
            assert by_query.status_code == 200, (method, path, by_query.text)
            by_header = client.request(method, path, json=body, headers=bearer(TOKEN))
            assert by_header.status_code == 200, (method, path, by_header.text)
        assert client.get("/health").status_code == 200
        # Refused requests stored nothing: the conversation holds what the accepted ones did.
        assert client.get("/conversations", params={"token": TOKEN}).status_code == 200
        prefix_of_token = client.get("/version", params={"token": TOKEN[:-1]})
        assert prefix_of_token.status_code == 401
        malformed = client.get("/version", headers={"Authorization": "Basic abc"})
        assert malformed.status_code == 401


def test_refused_write_stores_nothing(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("memory", auth_token=TOKEN)
    cid = new_id("refused")
    with server.client() as client:
        response = client.post(f"/conversations/{cid}/tracker/events", json=user("hi"))
        assert response.status_code == 401
    assert not server.store.exists(cid)


def test_jwt_admin_may_do_everything(start_server: Callable[..., LiveServer], backend: str) -> None:
    server = start_server(backend, jwt_secret=SECRET)
    headers = bearer(jwt_for("admin", "root"))
    with server.client(headers=headers) as client:
        for method, path, body in protected_requests(new_id("admin")):
            response = client.request(method, path, json=body)
            assert response.status_code == 200, (method, path, response.text)


def test_jwt_user_only_reaches_their_own_conversation(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server("memory", jwt_secret=SECRET)
    me, other = new_id("me"), new_id("other")
    server.store.append(other, session_start())
    with server.client(headers=bearer(jwt_for("user", me))) as client:
        own = client.post(f"/conversations/{me}/tracker/events", json=user("hi"))
        assert own.status_code == 200
        assert client.get(f"/conversations/{me}/tracker").status_code == 200
        assert client.get("/events", params={"sender_id": me}).status_code == 200
        refused: list[tuple[str, str, Any]] = [
            ("GET", f"/conversations/{other}/tracker", None),
            ("POST", f"/conversations/{other}/tracker/events", user("intrude")),
            ("PUT", f"/conversations/{other}/tracker/events", []),
            ("DELETE", f"/conversations/{other}", None),
            ("GET", "/conversations", None),
            ("GET", "/events", None),
            ("GET", "/metrics", None),
        ]
        for method, path, body in refused:
            response = client.request(method, path, json=body)
            assert response.status_code == 403, (method, path)
            assert response.json()["reason"] == "NotAuthorized"
        # /events of someone else is refused too.
        assert client.get("/events", params={"sender_id": other}).status_code == 403
    assert server.store.version(other) == 3


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        (jwt_for("admin", "root", exp=int(time.time()) - 60), 401, "expired"),
        (
            jwt.encode({"user": {"role": "admin"}}, "other-secret-" + "y" * 64, algorithm="HS256"),
            401,
            "valid",
        ),
        ("not.a.jwt", 401, "valid"),
        (jwt_for(None, sub="x"), 403, "user"),
        (jwt_for("guest", "x"), 403, "role"),
        (jwt.encode({"user": {"role": "admin"}}, SECRET, algorithm="HS512"), 401, "valid"),
    ],
    ids=["expired", "wrong-secret", "garbage", "no-user-claim", "unknown-role", "wrong-alg"],
)
def test_bad_jwts_are_refused(
    start_server: Callable[..., LiveServer], token: str, status: int, message: str
) -> None:
    server = start_server("memory", jwt_secret=SECRET)
    cid = new_id("jwt")
    with server.client(headers=bearer(token)) as client:
        response = client.post(f"/conversations/{cid}/tracker/events", json=user("hi"))
    assert response.status_code == status
    assert message in response.json()["message"]
    assert not server.store.exists(cid)


def test_token_and_jwt_together(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("memory", auth_token=TOKEN, jwt_secret=SECRET)
    with server.client() as client:
        assert client.get("/version", params={"token": TOKEN}).status_code == 200
        assert client.get("/version", headers=bearer(jwt_for("admin", "a"))).status_code == 200
        assert client.get("/version", headers=bearer("neither")).status_code == 401


def test_cors_lets_only_the_named_origin_in(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("memory", auth_token=TOKEN, cors_origins=("https://ui.example",))
    preflight = {
        "Origin": "https://ui.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,if-match",
    }
    with server.client() as client:
        allowed = client.options("/conversations/a/tracker/events", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        other = client.options(
            "/conversations/a/tracker/events", headers={**preflight, "Origin": "https://evil"}
        )
        assert "access-control-allow-origin" not in other.headers
        answer = client.get("/version", headers={"Origin": "https://ui.example", **bearer(TOKEN)})
        assert answer.headers["access-control-allow-origin"] == "https://ui.example"
        assert "ETag" in answer.headers["access-control-expose-headers"]
        # CORS does not replace auth.
        refused = client.get("/version", headers={"Origin": "https://ui.example"})
        assert refused.status_code == 401

"""The pages' credentials over plain HTTP: the token moves from the address into a cookie,
a JWT is never taken from the address, and every page carries its security headers."""

from __future__ import annotations

import httpx

from tests.http.conftest import LiveServer
from tests.ui.conftest import TOKEN, jwt_for

HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_query_token_becomes_a_cookie_and_leaves_the_address(ui_server: LiveServer) -> None:
    with ui_server.client() as client:
        response = client.get(
            "/ui/dashboard", params={"token": TOKEN, "since": "2033-05-19"}, headers=HTML
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/dashboard?since=2033-05-19"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
        page = client.get("/ui/dashboard?since=2033-05-19", headers=HTML)  # the cookie
        assert page.status_code == 200
        assert TOKEN not in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"


def test_missing_or_wrong_credentials_get_the_sign_in_form_or_json(
    ui_server: LiveServer,
) -> None:
    with ui_server.client() as client:
        page = client.get("/ui/", headers=HTML)
        assert page.status_code == 401
        assert page.headers["www-authenticate"] == "Bearer"
        assert 'name="credential"' in page.text and "carol" not in page.text
        # a JWT is taken from a header or the sign-in form, never from the address
        admin_jwt = jwt_for("root", "admin")
        assert client.get("/ui/", params={"token": admin_jwt}, headers=HTML).status_code == 401
        api = client.get("/ui/conversations/carol")  # not a browser: the API's JSON error
        assert api.status_code == 401
        assert api.json()["reason"] == "NotAuthenticated"
        bearer = {"Authorization": f"Bearer {admin_jwt}"}
        assert client.get("/ui/conversations/carol", headers=bearer).status_code == 200


def test_a_signed_in_jwt_user_reaches_only_their_conversation(ui_server: LiveServer) -> None:
    with ui_server.client() as client:
        signed = client.post(
            "/ui/login",
            content=f"credential={jwt_for('alice')}&next=/ui/",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/"
        assert client.get("/ui/api/state/bob").status_code == 403
        assert client.get("/ui/download/bob").status_code == 403
        own = client.get("/ui/download/alice")
        assert own.status_code == 200
        assert len(own.text.splitlines()) == 8
        live = client.get("/ui/api/live")
        assert live.status_code == 200
        assert "carol" not in live.json()["html"] and "bob" not in live.json()["html"]
        # a sign-in can never send the browser to another site
        away = client.post(
            "/ui/login",
            content=f"credential={TOKEN}&next=//evil.example/",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert away.headers["location"] == "/ui/"
        assert httpx.codes.is_redirect(away.status_code)

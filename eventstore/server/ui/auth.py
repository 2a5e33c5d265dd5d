"""Credentials for the pages: the API's token or JWT, carried by a cookie in a browser.

A browser signs in on ``/ui/login`` (a form) or opens any page with ``?token=``: the
credential is checked like the API's, put into an HttpOnly, SameSite=Strict cookie
scoped to ``/ui``, and the browser is redirected to the same address without it, so the
token never stays in the address bar, the history or a page. ``Authorization: Bearer``
works too. A JWT ``user`` sees only their own conversation.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from eventstore.config import secret_value
from eventstore.server.auth import ADMIN, Principal, _bearer, _same, check_credential
from eventstore.server.config import ServerSettings
from eventstore.server.errors import ApiError

COOKIE = "eventstore_ui"
COOKIE_PATH = "/ui"


class LoginRequired(Exception):
    """A page was asked for without valid credentials: show the login form (401/403)."""

    def __init__(self, status: int, message: str, next_url: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.next_url = next_url


class Redirect(Exception):
    """Answer with this redirect instead of the page (``?token=`` moved into the cookie)."""

    def __init__(self, response: Response) -> None:
        super().__init__("redirect")
        self.response = response


def settings_of(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def without_token(request: Request) -> str:
    """The request's path and query string with ``token`` removed."""
    query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)]
    rest = urlencode([(k, v) for k, v in query if k != "token"])
    return request.url.path + (f"?{rest}" if rest else "")


def set_cookie(response: Response, request: Request, credential: str) -> None:
    """Keep the credential in the browser: HttpOnly, SameSite=Strict, only for ``/ui``."""
    response.set_cookie(
        COOKIE,
        credential,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def wants_html(request: Request) -> bool:
    """Whether the client is a browser asking for a page (else it gets the API's JSON)."""
    return "text/html" in request.headers.get("accept", "")


def principal_of(request: Request, api: bool = False) -> Principal:
    """Who is asking: bearer header, ``?token=``, or the cookie.

    ``?token=`` takes the auth token only (as the API; a JWT goes in a header or through
    the sign-in form); a browser is then redirected to the address without it, the token
    moved into the cookie. Pages raise ``LoginRequired``; ``api=True`` raises ``ApiError``.
    """
    settings = settings_of(request)
    if not settings.auth_enabled:
        return ADMIN
    query_token = request.query_params.get("token")
    token = secret_value(settings.auth_token)
    try:
        bearer = _bearer(request)
        if bearer is not None:
            return check_credential(bearer, settings)
        if query_token is not None:
            if not (token and _same(query_token, token)):
                raise ApiError(401, "the token is not valid")
            if api or not wants_html(request):
                return ADMIN
            response = RedirectResponse(without_token(request), status_code=303)
            set_cookie(response, request, query_token)
            raise Redirect(response)
        cookie = request.cookies.get(COOKIE)
        if cookie:
            return check_credential(cookie, settings)
        raise ApiError(401, "credentials are required: sign in with the API's token or a JWT")
    except ApiError as exc:
        if api:
            raise
        raise LoginRequired(exc.status, exc.message, without_token(request)) from None


def only_for(principal: Principal) -> str | None:
    """The one conversation a JWT ``user`` may see (None: an admin sees all)."""
    return None if principal.admin else (principal.username or "")


def safe_next(value: str | None) -> str:
    """A post-login target inside the UI (never another site)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"

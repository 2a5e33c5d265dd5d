"""Authentication as in Rasa: a shared token (``?token=`` or ``Authorization: Bearer``) or
a JWT (``Authorization: Bearer``, HS256 by default) whose ``user.role`` is ``admin``, or
``user`` limited to the conversation named by ``user.username``.

Tokens are compared in constant time and never logged; ``/health`` needs no credentials.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from eventstore.config import secret_value
from eventstore.drivers import require
from eventstore.server.config import ServerSettings
from eventstore.server.errors import ApiError


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made the request: an admin (token, admin JWT, or auth off) or one user."""

    admin: bool
    username: str | None = None

    def may_access(self, conversation_id: str | None) -> bool:
        """Admins access everything; a ``user`` only their own conversation."""
        return self.admin or (conversation_id is not None and conversation_id == self.username)


ADMIN = Principal(admin=True)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "the Authorization header must be 'Bearer <token>'")
    return value.strip()


def _same(supplied: str, expected: str) -> bool:
    return hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8"))


def _decode_jwt(token: str, settings: ServerSettings) -> Principal:
    jwt = require("jwt", "server")

    secret = secret_value(settings.jwt_secret) or ""
    try:
        payload: Any = jwt.decode(token, secret, algorithms=[settings.jwt_method])
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "the JWT has expired") from None
    except jwt.InvalidTokenError as exc:
        raise ApiError(401, f"the JWT is not valid: {type(exc).__name__}") from None
    user = payload.get("user") if isinstance(payload, dict) else None
    if not isinstance(user, dict):
        raise ApiError(403, "the JWT has no 'user' claim with a role")
    role = user.get("role")
    if role == "admin":
        return Principal(admin=True, username=user.get("username"))
    username = user.get("username")
    if role == "user" and isinstance(username, str) and username:
        return Principal(admin=False, username=username)
    raise ApiError(403, "the JWT's user.role must be 'admin', or 'user' with a user.username")


def check_credential(credential: str, settings: ServerSettings) -> Principal:
    """The principal of a token or JWT (the UI's cookie), or ``ApiError`` 401/403."""
    token = secret_value(settings.auth_token)
    if token and _same(credential, token):
        return ADMIN
    if settings.jwt_secret is not None:
        return _decode_jwt(credential, settings)
    raise ApiError(401, "the token is not valid")


def authenticate(request: Request) -> Principal:
    """The principal of a request, or ``ApiError`` 401 for missing or wrong credentials."""
    settings: ServerSettings = request.app.state.settings
    if not settings.auth_enabled:
        return ADMIN
    query_token = request.query_params.get("token")
    bearer = _bearer(request)
    token = secret_value(settings.auth_token)
    if token and query_token is not None and _same(query_token, token):
        return ADMIN
    if bearer is not None:
        return check_credential(bearer, settings)
    if query_token is None:
        raise ApiError(401, "credentials are required: '?token=' or 'Authorization: Bearer'")
    raise ApiError(401, "the token is not valid")


async def require_auth(request: Request) -> Principal:
    """Dependency of every protected route: authenticate and remember the principal."""
    principal = authenticate(request)
    request.state.principal = principal
    return principal


def require_access(principal: Principal, conversation_id: str | None) -> None:
    """``ApiError`` 403 unless ``principal`` may act on ``conversation_id``."""
    if not principal.may_access(conversation_id):
        what = f"conversation {conversation_id!r}" if conversation_id else "this route"
        raise ApiError(403, f"user {principal.username!r} may not access {what}")

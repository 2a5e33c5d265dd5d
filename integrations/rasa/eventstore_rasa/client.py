"""HTTP calls to the eventstore service: timeouts, bounded retries, errors that name the URL.

Every call opens its own aiohttp session (Rasa never closes tracker stores, and a session
left open at exit is logged as an error by asyncio). Connection errors and timeouts are
retried ``retries`` times with a doubling pause; writes are safe to retry because each one
carries ``If-Match`` (a write that landed before the connection broke answers 409, which
the store recognises as its own). The token travels only in the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from eventstore_rasa.errors import (
    EventStoreAuthError,
    EventStoreRequestError,
    EventStoreUnavailable,
)

logger = logging.getLogger("eventstore_rasa")

#: What the plug-in needs from ``eventstore run`` (its ``GET /version`` lists them).
REQUIRED_FEATURES = ("tracker-session", "append-start-session")


@dataclass(frozen=True)
class Reply:
    """A response: status, JSON body (or text), and the conversation version of its ETag."""

    status: int
    body: Any
    version: int | None


def shown_url(url: str) -> str:
    """``url`` without a password or query string, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else f"{user}@{host}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def conversation_path(sender_id: str, suffix: str = "") -> str:
    """The API path of a conversation (the id percent-encoded, ``/`` included)."""
    return "/conversations/" + urllib.parse.quote(sender_id, safe="") + suffix


def parse_etag(value: str | None) -> int | None:
    """The conversation version in an ``ETag`` (``"7"`` or ``W/"7"``)."""
    if not value:
        return None
    text = value.strip()
    text = (text[2:] if text.startswith("W/") else text).strip('"')
    return int(text) if text.isdigit() else None


def _message(body: Any) -> str:
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(body)[:300]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _read(request: Any) -> tuple[int, str, int | None]:
    """Status, body text and ETag version of a request (aiohttp's context manager)."""
    async with request as response:
        return response.status, await response.text(), parse_etag(response.headers.get("ETag"))


class EventStoreClient:
    """The eventstore HTTP API as the tracker store uses it."""

    def __init__(self, url: str, auth_token: str | None, timeout: float, retries: int) -> None:
        self.url = url.rstrip("/")
        self.shown_url = shown_url(self.url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = 0.2
        self._headers = {"Accept": "application/json"}
        if auth_token:
            self._headers["Authorization"] = f"Bearer {auth_token}"

    # -- async calls (Rasa's event loop) ----------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One call, retried on connection errors, timeouts and 503 (store briefly down)."""
        attempts = self.retries + 1
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        for attempt in range(attempts):
            try:
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    request = session.request(
                        method,
                        self.url + path,
                        params=params,
                        json=body,
                        headers={**self._headers, **(headers or {})},
                    )
                    status, text, version = await _read(request)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if attempt + 1 < attempts:
                    await self._pause(f"{method} {path} failed ({_describe(exc)})", attempt)
                    continue
                raise EventStoreUnavailable(
                    f"eventstore at {self.shown_url} is unreachable: {method} {path} failed "
                    f"{attempts} times, last: {_describe(exc)}"
                ) from None
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            reply = Reply(status, parsed, version)
            stored = isinstance(parsed, Mapping) and (parsed.get("details") or {}).get("stored")
            if status == 503 and not stored and attempt + 1 < attempts:
                await self._pause(f"{method} {path} answered 503 ({_message(parsed)})", attempt)
                continue
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pause(self, what: str, attempt: int) -> None:
        """Log the failed attempt, then wait before the next one (doubling each time)."""
        logger.warning(
            "eventstore at %s: %s; retry %d of %d", self.shown_url, what, attempt + 1, self.retries
        )
        await asyncio.sleep(self.backoff * 2**attempt)

    def error(self, method: str, path: str, reply: Reply) -> Exception:
        """The error for an unexpected answer, naming the URL and the server's message."""
        message = _message(reply.body)
        if reply.status in (401, 403):
            return EventStoreAuthError(
                f"eventstore at {self.shown_url} refused the credentials ({reply.status} on "
                f"{method} {path}): {message}. Set auth_token in the tracker_store section "
                "(Rasa keeps a 'token' key for itself and never passes it on)."
            )
        return EventStoreRequestError(
            f"eventstore at {self.shown_url}: {method} {path} answered {reply.status}: {message}",
            reply.status,
        )

    # -- the start-up check (blocking: Rasa builds tracker stores synchronously) ------------
    def check(self, wait: float) -> dict[str, Any]:
        """``GET /version`` until it answers or ``wait`` seconds pass; a clear error otherwise.

        Proves the URL reaches an eventstore service new enough for this plug-in and that
        the credentials are accepted.
        """
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(self.url + "/version", headers=self._headers)
        deadline = time.monotonic() + wait
        while True:
            try:
                with opener.open(request, timeout=self.timeout) as response:
                    raw = response.read()
                break
            except urllib.error.HTTPError as exc:
                try:
                    body: Any = json.loads(exc.read() or b"null")
                except ValueError:
                    body = None
                if exc.code == 404:
                    raise EventStoreRequestError(
                        f"{self.shown_url} is not an eventstore service (GET /version answered "
                        "404); url must be where `eventstore run` listens",
                        404,
                    ) from None
                raise self.error("GET", "/version", Reply(exc.code, body, None)) from None
            except (OSError, ValueError) as exc:  # URLError, refused, DNS, timeout
                reason = getattr(exc, "reason", exc)
                if time.monotonic() >= deadline:
                    raise EventStoreUnavailable(
                        f"eventstore at {self.shown_url} is unreachable ({reason}); start "
                        "`eventstore run` there or fix url in the tracker_store section of "
                        "Rasa's endpoints.yml"
                    ) from None
                time.sleep(0.5)
        try:
            info = json.loads(raw)
        except ValueError:
            info = None
        if not isinstance(info, dict) or "version" not in info:
            raise EventStoreRequestError(
                f"{self.shown_url} is not an eventstore service (GET /version is not its JSON)",
                200,
            )
        missing = [f for f in REQUIRED_FEATURES if f not in (info.get("features") or [])]
        if missing:
            raise EventStoreRequestError(
                f"eventstore at {self.shown_url} (version {info['version']}) is too old for "
                f"eventstore_rasa: it lacks {', '.join(missing)}; upgrade eventstore",
                200,
            )
        return info

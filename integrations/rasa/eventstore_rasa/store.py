"""``EventStoreTrackerStore``: Rasa's tracker store over the eventstore HTTP API.

Rasa builds it from the ``tracker_store:`` section of its endpoints.yml
(``type: eventstore_rasa.EventStoreTrackerStore``) and wraps it in ``FailSafeTrackerStore``,
which swallows errors: so every failure is logged here at ERROR before it is raised.

Each tracker it returns remembers the conversation version it was loaded at and how many
events it held; ``save`` appends only the events Rasa added since, with that version as
``If-Match``. When another writer moved the conversation on in between (two Rasa processes
on one conversation without a shared lock store), ``on_conflict: append`` (the default)
appends the turn after the other writer's events and logs a warning; ``raise`` raises
``ConversationConflict``. Either way nothing is lost or stored twice silently.
"""

from __future__ import annotations

import difflib
import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

from eventstore_rasa.client import EventStoreClient, Reply, conversation_path
from eventstore_rasa.errors import (
    ConversationConflict,
    EventStoreConfigError,
    EventStoreRasaError,
)

if TYPE_CHECKING:
    from rasa.core.brokers.broker import EventBroker
    from rasa.shared.core.domain import Domain

logger = logging.getLogger("eventstore_rasa")

#: Options of the tracker_store section, besides ``type`` and ``url`` (Rasa's own keys).
OPTIONS = ("auth_token", "timeout", "retries", "startup_wait", "on_conflict")
ON_CONFLICT = ("append", "raise")
#: How often ``save`` re-appends after conflicts before it gives up (``on_conflict: append``).
CONFLICT_ATTEMPTS = 5
#: Largest page of ``GET /conversations``.
KEYS_PAGE = 1000
_MARK = "_eventstore_rasa_loaded"


@dataclass(frozen=True)
class _Loaded:
    """What a tracker was loaded at: the store's URL, the version, the events it held."""

    url: str
    version: int
    count: int


def _number(name: str, value: Any, kind: type, minimum: float) -> Any:
    """``value`` as ``kind`` (YAML gives ints/floats, ``${VAR}`` gives strings), checked."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        raise EventStoreConfigError(
            f"tracker_store: '{name}' must be a {kind.__name__}, got {value!r}"
        ) from None
    if number < minimum:
        raise EventStoreConfigError(f"tracker_store: '{name}' must be >= {minimum}, got {value!r}")
    return number


def _as_json(events: Iterable[Any]) -> list[Any]:
    """Rasa events as the JSON the service stores and returns."""
    return [json.loads(json.dumps(event.as_dict())) for event in events]


class EventStoreTrackerStore(TrackerStore):
    """Rasa tracker store keeping every conversation in an eventstore service.

    ``url`` (Rasa passes it as ``host``) is where ``eventstore run`` listens;
    ``auth_token`` its ``--auth-token`` or a JWT. ``timeout`` (s, per request), ``retries``
    (on connection errors), ``startup_wait`` (s to wait for the service at start-up) and
    ``on_conflict`` (``append`` or ``raise``) tune it. An unknown key is refused.
    """

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        auth_token: str | None = None,
        url: str | None = None,
        timeout: Any = 10.0,
        retries: Any = 3,
        startup_wait: Any = 10.0,
        on_conflict: str = "append",
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise EventStoreConfigError(self._unknown(kwargs))
        base = _base_url(host, url)
        if on_conflict not in ON_CONFLICT:
            raise EventStoreConfigError(
                f"tracker_store: 'on_conflict' must be 'append' or 'raise', got {on_conflict!r}"
            )
        if auth_token is not None and not isinstance(auth_token, str):
            raise EventStoreConfigError("tracker_store: 'auth_token' must be a string")
        super().__init__(domain, event_broker)
        self.on_conflict = on_conflict
        self._client = EventStoreClient(
            base,
            auth_token or None,
            _number("timeout", timeout, float, 0.001),
            _number("retries", retries, int, 0),
        )
        self.url = self._client.shown_url
        info = self._client.check(_number("startup_wait", startup_wait, float, 0))
        logger.info(
            "eventstore_rasa: conversations are kept by eventstore %s at %s (store: %s)",
            info.get("version"), self.url, info.get("store"),
        )  # fmt: skip
        if event_broker is not None:
            logger.warning(
                "eventstore_rasa: Rasa's endpoints.yml configures an event_broker, but this "
                "tracker store does not publish through it: eventstore at %s publishes every "
                "event it stores. Move the event_broker section into eventstore's "
                "endpoints.yml (docs/rasa.md), or events reach no broker.",
                self.url,
            )

    @staticmethod
    def _unknown(kwargs: dict[str, Any]) -> str:
        parts = []
        for key in sorted(kwargs):
            hint = difflib.get_close_matches(key, OPTIONS, n=1)
            parts.append(f"'{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
        return (
            f"tracker_store: unknown key {', '.join(parts)} for "
            f"eventstore_rasa.EventStoreTrackerStore; known keys: url, {', '.join(OPTIONS)}"
        )

    # -- the loaded-at marks ------------------------------------------------------------
    def _mark(self, tracker: DialogueStateTracker, version: int, count: int) -> None:
        setattr(tracker, _MARK, _Loaded(self._client.url, version, count))

    def _loaded(self, tracker: DialogueStateTracker) -> _Loaded | None:
        mark = getattr(tracker, _MARK, None)
        if isinstance(mark, _Loaded) and mark.url == self._client.url:
            return mark
        return None

    @contextmanager
    def _loudly(self, action: str, consequence: str) -> Iterator[None]:
        """Log a failure at ERROR (Rasa's FailSafeTrackerStore swallows it), then raise it."""
        try:
            yield
        except EventStoreRasaError as exc:
            logger.error("eventstore_rasa: %s failed: %s; %s", action, exc, consequence)
            raise

    # -- Rasa's TrackerStore interface ------------------------------------------------------
    def init_tracker(self, sender_id: str) -> DialogueStateTracker:
        """A new tracker (Rasa's), marked as loaded at version 0 with no events."""
        tracker = super().init_tracker(sender_id)
        self._mark(tracker, 0, 0)
        return tracker

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The current session (from the last session start on), None for no events."""
        with self._loudly(
            f"loading conversation {sender_id!r}", "Rasa treats it as a new conversation"
        ):
            return await self._load(sender_id, "current")

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """Every session of the conversation, None for no events."""
        with self._loudly(
            f"loading conversation {conversation_id!r}", "Rasa answers without its history"
        ):
            return await self._load(conversation_id, "all")

    async def exists(self, conversation_id: str) -> bool:
        """Whether the conversation has events (one version read, no events sent)."""
        with self._loudly(f"checking conversation {conversation_id!r}", "Rasa sees none"):
            path = conversation_path(conversation_id, "/tracker")
            reply = await self._client.request(
                "GET", path, params={"session": "current", "include_events": "NONE"}
            )
            if reply.status != 200:
                raise self._client.error("GET", path, reply)
            return bool(reply.version)

    async def keys(self) -> Iterable[str]:
        """Every conversation id, read page by page."""
        with self._loudly("listing conversations", "Rasa sees none"):
            ids: list[str] = []
            cursor: str | None = None
            while True:
                params = {"limit": str(KEYS_PAGE)}
                if cursor:
                    params["cursor"] = cursor
                reply = await self._client.request("GET", "/conversations", params=params)
                if reply.status != 200 or not isinstance(reply.body, dict):
                    raise self._client.error("GET", "/conversations", reply)
                ids.extend(reply.body.get("conversations") or [])
                cursor = reply.body.get("next_cursor")
                if not cursor:
                    return ids

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the events Rasa added since the tracker was loaded, checked by version."""
        sender_id = tracker.sender_id
        with self._loudly(
            f"saving conversation {sender_id!r} to eventstore at {self.url}",
            "Rasa keeps this turn in its in-memory fallback store only",
        ):
            count = len(tracker.events)
            mark = self._loaded(tracker)
            if mark is not None and mark.count <= count:
                new = _as_json(itertools.islice(tracker.events, mark.count, None))
                version = mark.version
                if new:
                    version = await self._append(sender_id, new, mark.version)
            else:
                version = await self._save_unloaded(sender_id, _as_json(tracker.events))
            self._mark(tracker, version, count)

    # -- internals ------------------------------------------------------------------------
    async def _get_tracker(self, sender_id: str, session: str) -> Reply:
        path = conversation_path(sender_id, "/tracker")
        reply = await self._client.request(
            "GET", path, params={"session": session, "include_events": "ALL"}
        )
        if reply.status != 200 or not isinstance(reply.body, dict):
            raise self._client.error("GET", path, reply)
        return reply

    async def _load(self, sender_id: str, session: str) -> DialogueStateTracker | None:
        reply = await self._get_tracker(sender_id, session)
        events = reply.body.get("events") or []
        if not events:
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        self._mark(tracker, reply.version or 0, len(tracker.events))
        return tracker

    async def _append(self, sender_id: str, events: list[Any], expected: int) -> int:
        """POST the events with ``If-Match: expected``; resolve conflicts; the new version."""
        path = conversation_path(sender_id, "/tracker/events")
        params = {"start_session": "false", "include_events": "NONE"}
        for _ in range(CONFLICT_ATTEMPTS):
            reply = await self._client.request(
                "POST", path, params=params, body=events, headers={"If-Match": f'"{expected}"'}
            )
            if reply.status == 200:
                return reply.version if reply.version is not None else expected + len(events)
            details = reply.body.get("details") if isinstance(reply.body, dict) else None
            details = details if isinstance(details, dict) else {}
            if reply.status == 503 and details.get("stored"):
                return int(details.get("version") or expected + len(events))
            if reply.status != 409:
                raise self._client.error("POST", path, reply)
            actual = details.get("actual_version")
            if await self._landed(sender_id, events, expected):
                return expected + len(events)  # an earlier attempt stored them (retried)
            if self.on_conflict == "raise":
                raise ConversationConflict(
                    f"conversation {sender_id!r} in eventstore at {self.url} moved from version "
                    f"{expected} to {actual} while this Rasa process handled a turn; its "
                    f"{len(events)} events were not stored",
                    sender_id,
                    expected,
                    actual,
                )
            logger.warning(
                "eventstore_rasa: conversation %r moved from version %s to %s while this Rasa "
                "process handled a turn (another Rasa process wrote to it: give every Rasa "
                "process one shared lock_store, e.g. type: redis); storing this turn's %d "
                "events after the other writer's",
                sender_id, expected, actual, len(events),
            )  # fmt: skip
            if not isinstance(actual, int):
                actual = (await self._get_tracker(sender_id, "current")).version or 0
            expected = actual
        raise ConversationConflict(
            f"conversation {sender_id!r} in eventstore at {self.url} kept moving: "
            f"{CONFLICT_ATTEMPTS} appends in a row were refused; its {len(events)} events "
            "were not stored",
            sender_id,
            expected,
            None,
        )

    async def _landed(self, sender_id: str, events: list[Any], expected: int) -> bool:
        """Whether the log holds exactly ``events`` right after version ``expected``."""
        reply = await self._get_tracker(sender_id, "current")
        stored = reply.body.get("events") or []
        version = reply.version or 0
        start = len(stored) - (version - expected)
        if start < 0:  # a later session began since: read them all
            stored = (await self._get_tracker(sender_id, "all")).body.get("events") or []
            start = expected
        return stored[start : start + len(events)] == events

    async def _save_unloaded(self, sender_id: str, events: list[Any]) -> int:
        """Save a tracker this store did not load: append what extends the log, else replace.

        Rasa builds such trackers in ``PUT /conversations/{id}/tracker/events``, which
        replaces the conversation (as it says: "will override an existing tracker").
        """
        full = await self._get_tracker(sender_id, "all")
        version = full.version or 0
        stored = full.body.get("events") or []
        if events[: len(stored)] == stored:
            rest = events[len(stored) :]
            return await self._append(sender_id, rest, version) if rest else version
        current = (await self._get_tracker(sender_id, "current")).body.get("events") or []
        if current and events[: len(current)] == current:
            rest = events[len(current) :]
            return await self._append(sender_id, rest, version) if rest else version
        logger.warning(
            "eventstore_rasa: replacing conversation %r in eventstore at %s with the %d "
            "events of a tracker Rasa built itself (PUT /conversations/{id}/tracker/events)",
            sender_id, self.url, len(events),
        )  # fmt: skip
        path = conversation_path(sender_id, "/tracker/events")
        reply = await self._client.request(
            "PUT",
            path,
            params={"include_events": "NONE"},
            body=events,
            headers={"If-Match": f'"{version}"'},
        )
        if reply.status != 200:
            raise self._client.error("PUT", path, reply)
        return reply.version if reply.version is not None else len(events)


def _base_url(host: Any, url: Any) -> str:
    """The service URL from ``url:`` (passed as ``host``), checked."""
    if host is not None and url is not None and host != url:
        raise EventStoreConfigError(
            f"tracker_store: two different URLs given: host={host!r} and url={url!r}"
        )
    value = host if host is not None else url
    if not value:
        raise EventStoreConfigError(
            "tracker_store: 'url' is required: where `eventstore run` listens, "
            "e.g. url: http://eventstore:5005"
        )
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise EventStoreConfigError(
            f"tracker_store: 'url' must start with http:// or https://, got {value!r}"
        )
    return value

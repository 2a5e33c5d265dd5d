"""Build stores and brokers from endpoints.yml sections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eventstore.config import parse_config
from eventstore.errors import ConfigError
from eventstore.registry import (
    RASA_READERS,
    SQL_DIALECT_TYPES,
    STORE_NAMES,
    TRACKER_STORES,
    import_object,
    resolve,
)
from eventstore.relay import OutboxRelay, attach
from eventstore.stores.base import EventSource, TrackerStore
from eventstore.stores.rasa_layout import RASA_LAYOUTS, RasaLayoutReader

if TYPE_CHECKING:
    from brokers.base import EventBroker
    from eventstore.endpoints import Endpoints


def create_tracker_store(
    config: Mapping[str, Any] | None = None, event_broker: EventBroker | None = None
) -> TrackerStore:
    """Build the store a ``tracker_store:`` section describes; None means in-memory.

    With ``event_broker``, a relay publishes every event the store stores to it (started
    here; closing the store stops it and closes the broker: ``relay_of(store)``).

    ``type`` picks the backend (case-insensitive, aliases allowed) or names a custom
    ``TrackerStore`` subclass by dotted path. ``store_type`` is Rasa's legacy spelling.
    """
    cls, settings = store_class(config)
    store = cls.from_config(settings)
    if event_broker is not None:  # also publishes what an earlier process stored and left
        attach(store, event_broker)
    return store


def store_class(
    config: Mapping[str, Any] | None,
) -> tuple[type[TrackerStore], dict[str, Any]]:
    """The store class a ``tracker_store:`` section names, and its settings without ``type``.

    A type that names a SQL dialect (``postgresql``, ``mysql``, ...) is the ``sql`` store
    with that dialect; a ``dialect:`` naming another one is refused.
    """
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"tracker_store must be a mapping, got {type(config).__name__}")
    settings = dict(config)
    legacy = settings.pop("store_type", None)
    type_name = legacy or settings.pop("type", None) or "in_memory"
    settings.pop("type", None)
    dialect = SQL_DIALECT_TYPES.get(str(type_name).strip().lower())
    if dialect is not None:
        given = settings.setdefault("dialect", dialect)
        base = str(given).strip().lower().split("+", 1)[0]
        if SQL_DIALECT_TYPES.get(base, base) != dialect:
            raise ConfigError(
                f"tracker_store: type {type_name!r} means dialect {dialect!r}, but 'dialect' "
                f"is {given!r}; use type: sql with the dialect you mean"
            )
        type_name = "sql"
    cls = resolve("tracker_store", type_name, TRACKER_STORES, STORE_NAMES)
    if not (isinstance(cls, type) and issubclass(cls, TrackerStore)):
        raise ConfigError(f"tracker_store: {type_name!r} is not a TrackerStore subclass")
    return cls, settings


def create_from_endpoints(endpoints: Endpoints, command: str = "this command") -> TrackerStore:
    """The store and its broker, both from one endpoints.yml, with its privacy rules.

    The file must name a store (``command`` says who needs it, in the error).

    ``privacy.redaction`` with ``apply: store`` redacts each event before it is stored;
    with ``apply: publish`` only the broker's messages are redacted.
    """
    from eventstore.privacy import Redactor, parse_privacy, parse_retention

    section = endpoints.store_section(command)
    privacy = parse_privacy(endpoints.privacy)  # every section checked before connecting
    parse_retention(endpoints.retention)
    analytics = None
    if endpoints.analytics is not None:  # SQL tables elsewhere: imports SQLAlchemy
        from eventstore.analytics.erasure import attach_eraser, parse_analytics

        analytics = parse_analytics(endpoints.analytics)
    broker = create_broker_from_endpoints(endpoints)
    where = f"{endpoints.path or 'endpoints.yml'}: tracker_store"
    store = open_store(section, where, broker)
    if not isinstance(store, TrackerStore):
        store.close()
        raise ConfigError(
            f"{where}: layout: rasa is read-only; {command} needs a store it can write "
            "(read it with export, events or migrate)"
        )
    redaction = privacy.redaction if privacy is not None else None
    if redaction is not None and redaction.apply == "store":
        store.redact_before_store = Redactor.from_settings(redaction)
    if analytics is not None:
        try:
            attach_eraser(store, analytics)
        except BaseException:
            store.close()
            raise
    return store


def create_broker_from_endpoints(endpoints: Endpoints) -> EventBroker | None:
    """The broker of endpoints.yml; with publish-only redaction, messages leave redacted."""
    from brokers import create_broker
    from eventstore.privacy import Redactor, parse_privacy

    privacy = parse_privacy(endpoints.privacy)
    broker = create_broker(endpoints.event_broker)
    redaction = privacy.redaction if privacy is not None else None
    if broker is None or redaction is None or redaction.apply != "publish":
        return broker
    from eventstore.privacy.publishing import RedactingBroker

    return RedactingBroker(broker, Redactor.from_settings(redaction))


def open_store(
    section: Mapping[str, Any] | None,
    where: str = "tracker_store",
    event_broker: EventBroker | None = None,
) -> EventSource:
    """A store from a ``tracker_store:`` section; ``layout: rasa`` picks a Rasa-layout reader.

    Every command and the server open their store here. Without ``layout`` (or with
    ``layout: eventstore``) this is ``create_tracker_store``; a Rasa-layout reader stores
    nothing, so it publishes nothing to ``event_broker``.
    """
    if section is None:
        raise ConfigError(f"{where}: the tracker_store section is missing")
    settings = dict(section)
    layout = settings.pop("layout", None)
    if layout is None or str(layout).lower() == "eventstore":
        return create_tracker_store(settings, event_broker)
    if str(layout).lower() not in RASA_LAYOUTS:
        raise ConfigError(f"{where}: unknown layout {layout!r} (known: eventstore, rasa)")
    type_name = str(settings.pop("store_type", None) or settings.pop("type", None) or "")
    settings.pop("type", None)
    key = STORE_NAMES.get(type_name.lower(), type_name.lower())
    if key == "sql":
        raise ConfigError(
            f"{where}: a Rasa SQL database is upgraded in place with 'eventstore db upgrade'; "
            "then use it without 'layout: rasa'"
        )
    if key not in RASA_READERS:
        raise ConfigError(
            f"{where}: layout: rasa reads types {', '.join(sorted(RASA_READERS))}, "
            f"not {type_name or 'an empty type'!r}"
        )
    reader: type[RasaLayoutReader] = import_object(RASA_READERS[key])
    config = reader.Config
    assert config is not None
    return reader.from_settings(parse_config(config, settings, where))


def open_relay(endpoints: Endpoints, **options: Any) -> tuple[TrackerStore, OutboxRelay]:
    """The store of ``endpoints`` and a relay from its outbox to its broker (not started).

    The store is opened without the broker, so no relay of its own runs. Used by
    ``eventstore relay``; a ``ConfigError`` if there is no broker or no shared outbox.
    """
    source = endpoints.path or "endpoints.yml"
    section = endpoints.store_section("the relay")
    if endpoints.event_broker is None:
        raise ConfigError(f"{source} has no event_broker section: there is nothing to relay to")
    store = create_tracker_store(section, None)
    if store.process_local or not store.supports_outbox:
        kind = type(store).__name__
        store.close()
        raise ConfigError(
            f"{kind} keeps no outbox another process can read; only the process that "
            "stored the events publishes them (use a SQL, Redis or MongoDB store)"
        )
    broker = create_broker_from_endpoints(endpoints)  # with publish-only redaction
    assert broker is not None
    return store, OutboxRelay(store, broker, **options)

"""Read-only reader for Rasa's MongoDB layout: one document per conversation in
``conversations``, with an ``events`` array.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from eventstore.config import StrictConfig, secret_value
from eventstore.drivers import require
from eventstore.stores.mongo.errors import Server, translate
from eventstore.stores.rasa_layout import RasaLayoutReader


class RasaMongoConfig(StrictConfig):
    """Rasa's ``type: mongod`` keys (options go in the ``url``)."""

    host: str = Field(default="mongodb://localhost:27017", alias="url")
    db: str = "rasa"
    username: str | None = None
    password: SecretStr | None = None
    auth_source: str = "admin"
    collection: str = "conversations"
    timeout_ms: int = 10_000


class RasaMongoReader(RasaLayoutReader):
    """Rasa's Mongo layout: one document per conversation, its events in an ``events`` array."""

    Config: ClassVar[type[StrictConfig] | None] = RasaMongoConfig

    def __init__(self, client: Any, server: Server, collection: str) -> None:
        super().__init__()
        self.client = client
        self.collection = client[server.db][collection]
        self._server = server

    @classmethod
    def from_settings(cls, settings: Any) -> RasaMongoReader:
        pymongo = require("pymongo", "mongo")
        options: dict[str, Any] = {"serverSelectionTimeoutMS": settings.timeout_ms}
        if settings.username is not None:
            options.update(
                username=settings.username,
                password=secret_value(settings.password),
                authSource=settings.auth_source,
            )
        password = secret_value(settings.password)
        server = Server(
            settings.host, settings.db, settings.username, settings.auth_source, password
        )
        with translate(server):
            client = pymongo.MongoClient(settings.host, **options)
        return cls(client, server, settings.collection)

    def _translate(self, doing: str) -> AbstractContextManager[None]:
        """The store's translator: driver errors name the server and ``doing``, no password."""
        return translate(self._server, doing=f"{doing} (Rasa's layout)")

    def _load(self, sender_id: str) -> list[dict[str, Any]] | None:
        with self._translate(f"reading {sender_id!r}"):
            doc = self.collection.find_one({"sender_id": sender_id}, {"events": 1})
            if doc is None and sender_id.isdigit():  # Rasa 1.x stored numeric ids as ints
                doc = self.collection.find_one({"sender_id": int(sender_id)}, {"events": 1})
        if doc is None:
            return None
        events = doc.get("events")
        return events if isinstance(events, list) else []

    def keys(self) -> Iterator[str]:
        """Every document's ``sender_id`` (projected; documents are not loaded whole)."""
        with self._translate("listing conversations"):
            for doc in self.collection.find({}, {"sender_id": 1, "_id": 0}):
                if doc.get("sender_id") is not None:
                    yield str(doc["sender_id"])

    def close(self) -> None:
        self.client.close()

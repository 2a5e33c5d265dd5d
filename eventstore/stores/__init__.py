"""Tracker store backends, one folder each; pick one by name with ``create_tracker_store``.

The names a ``type:`` may give, beside the backends they name (``eventstore.registry``
resolves them): each store's module, the aliases, and the SQL dialects' names (kept with
the dialects in ``stores/sql/dialects.py``).
"""

from __future__ import annotations

from eventstore.stores.sql.dialects import SQL_DIALECT_TYPES

#: Type name -> ``module:Class`` of the store.
TRACKER_STORES: dict[str, str] = {
    "in_memory": "eventstore.stores.memory:InMemoryTrackerStore",
    "sql": "eventstore.stores.sql.store:SQLTrackerStore",
    "redis": "eventstore.stores.redis.store:RedisTrackerStore",
    "mongod": "eventstore.stores.mongo.store:MongoTrackerStore",
    "dynamo": "eventstore.stores.dynamo.store:DynamoTrackerStore",
}
STORE_ALIASES: dict[str, str] = {
    "memory": "in_memory",
    "inmemory": "in_memory",
    "in-memory": "in_memory",
    "mongo": "mongod",
    "mongodb": "mongod",
    "dynamodb": "dynamo",
}
#: Every name of a store type (for lookups and did-you-mean hints).
STORE_NAMES: dict[str, str] = STORE_ALIASES | dict.fromkeys(SQL_DIALECT_TYPES, "sql")

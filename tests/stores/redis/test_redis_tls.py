"""``use_ssl`` and the ssl file options against a redis-server that speaks only TLS."""

from __future__ import annotations

from typing import Any

import pytest

from eventstore.errors import BackendUnavailable
from eventstore.stores.redis.store import RedisTrackerStore
from eventstore.testing import new_id, turn
from tests.servers.redis import RedisServer


def tls_options(server: RedisServer) -> dict[str, Any]:
    return {
        "ssl_certfile": server.files["client_cert"],
        "ssl_keyfile": server.files["client_key"],
        "ssl_ca_certs": server.files["ca"],
    }


@pytest.mark.parametrize("style", ["keys", "rediss url"])
def test_appends_and_reads_over_tls(redis_tls_server: RedisServer, style: str) -> None:
    if style == "keys":
        where = {"url": "127.0.0.1", "port": redis_tls_server.port, "use_ssl": True}
    else:
        where = {"url": redis_tls_server.url}
    store = RedisTrackerStore.from_config({**where, **tls_options(redis_tls_server)})
    sid = new_id()
    assert store.append(sid, turn(0)) == 4
    assert [e["event"] for e in store.read(sid)] == ["user", "action", "bot", "action"]
    store.close()


def test_tls_failures_are_backend_unavailable(redis_tls_server: RedisServer) -> None:
    port = redis_tls_server.port
    plain = RedisTrackerStore.from_config({"url": "127.0.0.1", "port": port})
    no_client_cert = RedisTrackerStore.from_config(
        {"url": redis_tls_server.url, "ssl_ca_certs": redis_tls_server.files["ca"]}
    )
    unknown_ca = RedisTrackerStore.from_config({"url": redis_tls_server.url})
    for store in (plain, no_client_cert, unknown_ca):
        with pytest.raises(BackendUnavailable) as info:
            store.append(new_id(), turn(0))
        assert f"127.0.0.1:{port}" in str(info.value)
        store.close()

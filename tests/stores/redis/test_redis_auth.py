"""``username`` / ``password`` against a private redis-server with ACL users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstore.errors import BackendUnavailable
from eventstore.stores.redis.store import RedisTrackerStore
from eventstore.testing import new_id, turn
from tests.servers.redis import RedisServer

SECRET = "s3cr3t-Passw0rd"


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(
        str(tmp_path),
        args=(
            *("--user", "bot", "on", f">{SECRET}", "~*", "&*", "+@all"),
            # may read, but may not run scripts: appends must fail cleanly
            *("--user", "reader", "on", f">{SECRET}", "~*", "&*", "+@all", "-@scripting"),
        ),
    )
    server.start()
    yield server
    server.stop()


def test_an_acl_user_logs_in_and_writes(acl_server: RedisServer) -> None:
    store = RedisTrackerStore.from_config(
        {"url": acl_server.url, "username": "bot", "password": SECRET}
    )
    sid = new_id()
    assert store.append(sid, turn(0)) == 4
    assert store.version(sid) == 4
    store.close()
    in_url = RedisTrackerStore.from_config(
        {"url": f"redis://bot:{SECRET}@127.0.0.1:{acl_server.port}/0"}
    )
    assert isinstance(in_url, RedisTrackerStore)
    assert in_url.version(sid) == 4
    assert SECRET not in repr(in_url) and SECRET not in repr(in_url.settings)
    in_url.close()


def test_login_and_permission_failures_never_show_the_password(acl_server: RedisServer) -> None:
    wrong = RedisTrackerStore.from_config(
        {"url": acl_server.url, "username": "bot", "password": SECRET + "x"}
    )
    with pytest.raises(BackendUnavailable) as info:
        wrong.append(new_id(), turn(0))
    assert "AuthenticationError" in str(info.value)
    assert SECRET not in str(info.value)
    wrong.close()

    reader = RedisTrackerStore.from_config(
        {"url": acl_server.url, "username": "reader", "password": SECRET}
    )
    sid = new_id()
    with pytest.raises(BackendUnavailable) as info:
        reader.append(sid, turn(0))
    assert "no permissions to run the 'evalsha' command" in str(info.value)
    assert SECRET not in str(info.value)
    assert reader.version(sid) == 0  # nothing was stored
    reader.close()

"""MongoDB with authentication on (SCRAM-SHA-256): the store logs in, bad logins are clear."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pymongo
import pytest

from eventstore.errors import BackendUnavailable
from eventstore.stores.mongo.config import MongoConfig
from eventstore.stores.mongo.store import MongoTrackerStore
from eventstore.testing import action, new_id

PASSWORD = "pa:ss@w/rd 1"


@pytest.fixture(scope="module")
def auth_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server requiring auth, with user 'bot' (readWrite on 'rasa') created beforehand."""
    from secantus import SecantusDBServer

    data = str(tmp_path_factory.mktemp("mongo-auth") / Path("data"))
    try:
        setup = SecantusDBServer(host="127.0.0.1", port=0, storage_path=data)
        setup.start()
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(setup.uri)
        client.admin.command(
            "createUser",
            "bot",
            pwd=PASSWORD,
            roles=[{"role": "readWrite", "db": "rasa"}],
            mechanisms=["SCRAM-SHA-256"],
        )
        client.close()
        setup.stop()
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=data, require_auth=True)
        server.start()
    except Exception as exc:
        pytest.fail(f"the SecantusDB auth test server did not start: {exc!r}")
    yield str(server.uri)
    server.stop()


def test_username_and_password_keys_log_in(auth_url: str) -> None:
    store = MongoTrackerStore(MongoConfig(url=auth_url, username="bot", password=PASSWORD))
    with store:
        sid = new_id()
        assert store.append(sid, [action("a")]) == 1
        assert [e["name"] for e in store.read(sid)] == ["a"]


def test_credentials_in_the_url_log_in(auth_url: str) -> None:
    url = auth_url.replace("mongodb://", f"mongodb://bot:{quote(PASSWORD, safe='')}@")
    store = MongoTrackerStore(MongoConfig(url=url))
    with store:
        assert store.settings.username == "bot"
        assert store.append(new_id(), [action("a")]) == 1
        assert quote(PASSWORD, safe="") not in repr(store) and PASSWORD not in repr(store)


@pytest.mark.parametrize(
    ("username", "password"), [("bot", "wrong-password"), (None, None), ("nobody", PASSWORD)]
)
def test_bad_or_missing_credentials_are_backend_unavailable(
    auth_url: str, username: str | None, password: str | None
) -> None:
    store = MongoTrackerStore(
        MongoConfig(
            url=auth_url, username=username, password=password, server_selection_timeout_ms=1000
        )
    )
    try:
        with pytest.raises(BackendUnavailable, match="MongoDB refused access") as info:
            store.append(new_id(), [action("a")])
        assert PASSWORD not in str(info.value) and "wrong-password" not in str(info.value)
    finally:
        store.close()

"""Secrets never leak: no password, token or credentialed URL in logs, errors, reprs or output.

Every command runs with credentials set while all log records (DEBUG and up) and all
output are captured; the secret must not appear in any of it, in plain or URL-quoted form.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from eventstore import EventStoreError, create_tracker_store
from eventstore.cli import main
from eventstore.relay import broker_of
from tests.servers.sql_fresh import FreshDatabase

SECRET = "Pw-XYZZY-s3cr3t@:/%"  # characters that need quoting in a URL
FORMS = {SECRET, quote(SECRET, safe=""), quote_plus(SECRET), "XYZZY"}


def assert_clean(*texts: str) -> None:
    for text in texts:
        for form in FORMS:
            assert form not in text, (
                f"secret leaked: ...{text[max(0, text.find(form) - 80) :][:200]}"
            )


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    assert_clean(*lines)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    assert_clean(out.out, out.err)
    return code, out.out + out.err


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def pg_section(db_url: str, port: int = 5432) -> str:
    database = db_url.rsplit("/", 1)[1]
    return (
        "tracker_store:\n  type: sql\n  dialect: postgresql\n  url: 127.0.0.1\n"
        f"  port: {port}\n  db: {database}\n  username: postgres\n  password: '{SECRET}'\n"
    )


def test_every_command_with_a_sql_password(
    tmp_path: Path,
    fresh_database: FreshDatabase,
    captured: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # PostgreSQL here trusts local connections, so any password is accepted. A database of
    # its own: `migrate` copies every conversation, whatever other tests stored.
    log = tmp_path / "events.log"
    endpoints = write(
        tmp_path / "pg.yml",
        pg_section(fresh_database("postgresql")) + f"event_broker:\n  type: file\n  path: {log}\n",
    )
    target = write(
        tmp_path / "target.yml",
        f"tracker_store:\n  type: sql\n  dialect: sqlite\n  db: {tmp_path / 't.db'}\n",
    )
    assert run_cli(capsys, "db", "upgrade", "--endpoints", endpoints)[0] == 0
    from eventstore import load_endpoints
    from eventstore.factory import create_from_endpoints

    store = create_from_endpoints(load_endpoints(endpoints))
    sid = f"s-{uuid.uuid4().hex[:6]}"
    store.append(sid, [{"event": "action", "name": "action_listen"}])
    assert_clean(repr(store), str(store), repr(broker_of(store)))
    store.close()
    for argv in (
        ("db", "current", "--endpoints", endpoints),
        ("db", "history", "--endpoints", endpoints),
        ("events", "--endpoints", endpoints, "--format", "table"),
        ("events", "--endpoints", endpoints),
        ("export", "--endpoints", endpoints),
        ("relay", "--endpoints", endpoints, "--once"),
        ("migrate", "--from", endpoints, "--to", target, "--verify"),
    ):
        code, output = run_cli(capsys, *argv)
        assert code == 0, (argv, output)


@pytest.mark.parametrize(
    "section",
    [
        # unreachable servers: the error must name the problem, not the password
        pg_section("x/es_none", port=1),
        "tracker_store:\n  type: sql\n"
        f"  url: postgresql+psycopg://postgres:{quote(SECRET, safe='')}@127.0.0.1:1/db\n",
        "tracker_store:\n  type: sql\n"
        f"  url: mysql+pymysql://root:{quote(SECRET, safe='')}@127.0.0.1:1/db\n",
        f"tracker_store:\n  type: redis\n  url: 127.0.0.1\n  password: '{SECRET}'\n",
        f"tracker_store:\n  type: redis\n  url: 127.0.0.1\n  port: 1\n  password: '{SECRET}'\n",
        "tracker_store:\n  type: mongod\n"
        f"  url: mongodb://u:{quote(SECRET, safe='')}@127.0.0.1:1/?serverSelectionTimeoutMS=300\n",
        f"tracker_store:\n  type: mongod\n  url: mongodb://127.0.0.1:1\n  password: '{SECRET}'\n"
        "  username: u\n  server_selection_timeout_ms: 300\n",
        "tracker_store:\n  type: dynamo\n  endpoint_url: http://127.0.0.1:1\n"
        f"  aws_access_key_id: AKIA\n  aws_secret_access_key: '{SECRET}'\n"
        "  connect_timeout: 0.3\n  max_attempts: 1\n",
        "tracker_store:\n  type: in_memory\nevent_broker:\n  type: pika\n  url: 127.0.0.1\n"
        f"  username: guest\n  password: '{SECRET}'\n  connection_attempts: 1\n",
        "tracker_store:\n  type: in_memory\nevent_broker:\n  type: kafka\n  url: 127.0.0.1:1\n"
        "  security_protocol: SASL_PLAINTEXT\n  sasl_username: u\n"
        f"  sasl_password: '{SECRET}'\n",
        "tracker_store:\n  type: in_memory\nevent_broker:\n  type: sql\n  dialect: postgresql\n"
        f"  url: 127.0.0.1\n  port: 1\n  username: postgres\n  password: '{SECRET}'\n",
        # a wrong key next to a password: the config error must not echo it
        f"tracker_store:\n  type: sql\n  password: '{SECRET}'\n  pasword: '{SECRET}'\n",
        f"tracker_store:\n  type: redis\n  password: {{nested: '{SECRET}'}}\n",
    ],
)
def test_failures_with_credentials_do_not_leak(
    tmp_path: Path,
    section: str,
    captured: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoints = write(tmp_path / "e.yml", section)
    from eventstore import load_endpoints
    from eventstore.factory import create_from_endpoints

    try:
        store = create_from_endpoints(load_endpoints(endpoints))
    except EventStoreError as exc:
        assert_clean(str(exc), repr(exc), str(exc.__cause__ or ""))
    else:
        assert_clean(repr(store), str(store), repr(broker_of(store)))
        try:
            store.append("s1", [{"event": "pause"}])
            store.version("s1")
        except EventStoreError as exc:
            assert_clean(str(exc), repr(exc))
        finally:
            store.close()
    code, _ = run_cli(capsys, "events", "--endpoints", endpoints)
    assert code in (0, 1)


def test_configs_and_stores_hide_passwords_in_repr(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{quote(SECRET, safe='')}@")
    store = create_tracker_store({"type": "sql", "url": url})
    assert_clean(repr(store), str(store), str(vars(store)))
    store.close()
    from eventstore.stores.redis.store import RedisConfig

    config = RedisConfig.model_validate({"password": SECRET})
    assert_clean(repr(config), str(config))


@pytest.mark.parametrize(
    "section",
    [
        f"type: redis\n  layout: rasa\n  url: 127.0.0.1\n  port: 1\n  password: '{SECRET}'\n",
        f"type: redis\n  layout: rasa\n  url: redis://u:{quote(SECRET, safe='')}@127.0.0.1:1/0\n",
        "type: mongod\n  layout: rasa\n  timeout_ms: 300\n"
        f"  url: mongodb://u:{quote(SECRET, safe='')}@127.0.0.1:1/\n",
        "type: mongod\n  layout: rasa\n  timeout_ms: 300\n  url: mongodb://127.0.0.1:1\n"
        f"  username: u\n  password: '{SECRET}'\n",
        "type: dynamo\n  layout: rasa\n  endpoint_url: http://127.0.0.1:1\n"
        f"  aws_access_key_id: AKIA\n  aws_secret_access_key: '{SECRET}'\n",
    ],
)
def test_rasa_layout_readers_fail_naming_what_failed_without_leaking(
    tmp_path: Path, section: str, captured: pytest.LogCaptureFixture
) -> None:
    """The readers translate through their store's translator: the error names the read
    that failed (and that it was Rasa's layout), never a password."""
    from eventstore import BackendUnavailable, load_endpoints
    from eventstore.factory import open_store

    endpoints = load_endpoints(write(tmp_path / "e.yml", "tracker_store:\n  " + section))
    reader = open_store(endpoints.tracker_store)
    try:
        assert_clean(repr(reader), str(reader))
        with pytest.raises(BackendUnavailable) as listing:
            list(reader.keys())
        with pytest.raises(BackendUnavailable) as reading:
            reader.read("s1")
    finally:
        reader.close()
    for info, what in ((listing, "listing conversations"), (reading, "reading 's1'")):
        message = str(info.value)
        assert_clean(message, repr(info.value))
        assert what in message and "Rasa's layout" in message, message

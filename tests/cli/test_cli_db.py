"""``eventstore db ...`` and ``eventstore events``: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventstore.cli import main
from eventstore.stores.base import EventQuery
from eventstore.stores.sql.schema import HEAD_REVISION
from eventstore.stores.sql.store import SQLTrackerStore
from eventstore.testing import action, bot, user
from tests.stores.sql.test_sql_migrations import fill_rasa_database


def endpoints(tmp_path: Path, tracker_store: dict[str, Any], name: str = "endpoints.yml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"tracker_store": tracker_store}), encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_db_commands_on_a_rasa_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "rasa.db"
    conversations, _ = fill_rasa_database(f"sqlite:///{database}", "sqlite")
    ep = endpoints(tmp_path, {"type": "SQL", "dialect": "sqlite", "db": str(database)})

    code, out, _ = run(capsys, "db", "current", "--endpoints", ep)
    assert code == 0 and "Rasa SQLTrackerStore layout" in out and "eventstore db upgrade" in out

    code, out, _ = run(capsys, "db", "upgrade", "--endpoints", ep)
    assert code == 0
    assert out.splitlines() == [
        "recognised a Rasa SQLTrackerStore database; stamped at revision 0001",
        f"now at revision {HEAD_REVISION}",
    ]
    code, out, _ = run(capsys, "db", "current", "--endpoints", ep)
    assert (code, out.strip()) == (0, f"{HEAD_REVISION} (head)")

    code, out, _ = run(capsys, "db", "history", "--endpoints", ep)
    lines = out.splitlines()
    assert code == 0 and len(lines) == int(HEAD_REVISION)
    assert f"-> {HEAD_REVISION} (head, current)" in lines[0]
    assert lines[-1].startswith("base -> 0001: Rasa's SQLTrackerStore")

    code, out, _ = run(capsys, "db", "downgrade", "0002", "--endpoints", ep)
    assert (code, out.strip()) == (0, "now at revision 0002")
    code, out, _ = run(capsys, "db", "current", "--endpoints", ep)
    assert out.strip() == f"0002 (behind {HEAD_REVISION})"
    assert run(capsys, "db", "upgrade", "--endpoints", ep)[0] == 0

    store = SQLTrackerStore.from_url(f"sqlite:///{database}")
    try:
        for sid, events in conversations.items():
            assert store.read(sid) == events
    finally:
        store.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["db", "upgrade", "--endpoints", "{redis}"], "need a tracker_store of type sql"),
        (["db", "upgrade", "nope", "--url", "{sqlite}"], "Can't locate revision"),
        (["db", "current", "--endpoints", "{missing}"], "cannot read endpoints file"),
        (["events", "--endpoints", "{sqlite_ep}", "--since", "last tuesday"], "--since must be"),
        (["db", "current", "--url", "mssql://h/db"], "unknown SQL dialect"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    values = {
        "redis": endpoints(tmp_path, {"type": "redis", "url": "127.0.0.1"}, "redis.yml"),
        "sqlite": f"sqlite:///{tmp_path / 'e.db'}",
        "missing": str(tmp_path / "nope.yml"),
        "sqlite_ep": endpoints(tmp_path, {"type": "sql", "db": ":memory:"}, "memory.yml"),
    }
    code, _, err = run(capsys, *[a.format(**values) for a in argv])
    assert code == 1
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture
def filled(tmp_path: Path) -> tuple[str, SQLTrackerStore]:
    database = tmp_path / "events.db"
    store = SQLTrackerStore.from_url(f"sqlite:///{database}")
    store.append("alice", [user("hi", "greet", ts=100.0), action("utter_hello", ts=101.0)])
    store.append("bob", [user("yo", "greet", ts=200.0), bot("ünïcode reply")])
    store.append("alice", [user("buy", "purchase", ts=300.0)])
    return endpoints(tmp_path, {"type": "sql", "db": str(database)}), store


def test_events_streams_jsonl_with_filters(
    filled: tuple[str, SQLTrackerStore], capsys: pytest.CaptureFixture[str]
) -> None:
    ep, store = filled
    code, out, _ = run(capsys, "events", "--endpoints", ep)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [(m["sender_id"], m["seq"]) for m in lines] == [
        ("alice", 1),
        ("alice", 2),
        ("bob", 1),
        ("bob", 2),
        ("alice", 3),
    ]
    assert lines == [e.as_message() for e in store.query(EventQuery())]
    assert lines[3]["text"] == "ünïcode reply"

    def select(*filters: str) -> list[tuple[str, int]]:
        code, out, _ = run(capsys, "events", "--endpoints", ep, *filters)
        assert code == 0
        return [(m["sender_id"], m["seq"]) for m in map(json.loads, out.splitlines())]

    assert select("--sender-id", "alice") == [("alice", 1), ("alice", 2), ("alice", 3)]
    assert select("--type", "user", "--intent", "greet") == [("alice", 1), ("bob", 1)]
    assert select("--action", "utter_hello") == [("alice", 2)]
    assert select("--since", "150", "--until", "1970-01-01T00:04:00") == [("bob", 1)]
    assert select("--after", str(lines[2]["position"]), "--limit", "1") == [("bob", 2)]
    store.close()


def test_events_table_format(
    filled: tuple[str, SQLTrackerStore], capsys: pytest.CaptureFixture[str]
) -> None:
    ep, store = filled
    code, out, _ = run(capsys, "events", "--endpoints", ep, "--format", "table", "--type", "user")
    rows = out.splitlines()
    assert code == 0 and len(rows) == 4
    assert rows[0].split() == [
        "position",
        "sender_id",
        "seq",
        "time",
        "(UTC)",
        "type",
        "name",
        "text",
    ]
    assert rows[1].split()[1:] == [
        "alice",
        "1",
        "1970-01-01",
        "00:01:40.000",
        "user",
        "greet",
        "hi",
    ]
    assert rows[3].split()[-3:] == ["user", "purchase", "buy"]
    store.close()


def test_events_works_for_any_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "events", "--endpoints", endpoints(tmp_path, {"type": "in_memory"}))
    assert (code, out) == (0, "")


def test_db_upgrade_needs_no_alembic_ini(tmp_path: Path) -> None:
    """The installed console script, run where there is no alembic.ini."""
    script = Path(sys.executable).parent / "eventstore"
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    done = subprocess.run(
        [str(script), "db", "upgrade", "--url", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"now at revision {HEAD_REVISION}"
    assert not (tmp_path / "alembic.ini").exists()


def test_events_table_shows_timestamps_no_calendar_can(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ep = endpoints(tmp_path, {"type": "sql", "db": str(tmp_path / "odd.db")})
    store = SQLTrackerStore.from_url(f"sqlite:///{tmp_path / 'odd.db'}")
    store.append("far", [{"event": "pause", "timestamp": 1e300}, {"event": "resume"}])
    store.close()
    code, out, _ = run(capsys, "events", "--endpoints", ep, "--format", "table")
    rows = out.splitlines()
    assert code == 0 and len(rows) == 3
    assert "1e+300" in rows[1] and "pause" in rows[1]

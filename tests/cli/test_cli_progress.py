"""migrate and export off a terminal (cron, CI): plain progress lines; and Ctrl-C says what
was done and how to resume, and the resumed run completes the work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventstore import create_tracker_store
from eventstore.cli import export as export_cli
from eventstore.cli import main

EVENT = {"event": "user", "text": "hi", "timestamp": 1.0}


def sqlite_store(tmp_path: Path, name: str, conversations: int = 0) -> Path:
    db = tmp_path / f"{name}.db"
    with create_tracker_store({"type": "sql", "db": str(db)}) as store:
        for i in range(conversations):
            store.append(f"c-{i:02d}", [EVENT, EVENT])
    endpoints = tmp_path / f"{name}.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: sqlite\n  db: {db}\n"
        f"event_broker:\n  type: file\n  path: {tmp_path / 'published.jsonl'}\n"
    )
    return endpoints


def interrupt_after(monkeypatch: pytest.MonkeyPatch, conversations: int) -> None:
    """Ctrl-C arrives while the ``conversations + 1``-th conversation is being reported."""
    advance = export_cli.ConversationProgress.advance

    def advance_then_interrupt(self: Any, sender_id: str, events: int) -> None:
        if self.done == conversations:
            raise KeyboardInterrupt
        advance(self, sender_id, events)

    monkeypatch.setattr(export_cli.ConversationProgress, "advance", advance_then_interrupt)


def test_plain_progress_lines_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = sqlite_store(tmp_path, "a", 3), sqlite_store(tmp_path, "b")
    monkeypatch.setattr(export_cli, "PLAIN_PROGRESS_SECONDS", 0.0)  # a line per conversation
    assert main(["migrate", "--from", str(source), "--to", str(target)]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(", ")[:2] for line in lines] == [
        ["migrating: 0/3 conversations", "0 events"],
        ["migrating: 1/3 conversations", "2 events"],
        ["migrating: 2/3 conversations", "4 events"],
        ["migrating: 3/3 conversations", "6 events"],
    ]
    monkeypatch.setattr(export_cli, "PLAIN_PROGRESS_SECONDS", 3600.0)  # the default case
    assert main(["export", "--endpoints", str(source)]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(", ")[:2] for line in lines] == [
        ["exporting: 0/3 conversations", "0 events"],
        ["exporting: 3/3 conversations", "6 events"],
    ]


def test_ctrl_c_in_migrate_says_what_was_copied_and_a_rerun_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = sqlite_store(tmp_path, "a", 4), sqlite_store(tmp_path, "b")
    interrupt_after(monkeypatch, 2)
    assert main(["migrate", "--from", str(source), "--to", str(target)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 2 of 4 conversations (4 events copied); what was copied stays " in err
    assert "run the same command again to continue" in err
    monkeypatch.undo()
    assert main(["migrate", "--from", str(source), "--to", str(target), "--verify"]) == 0
    assert "verified 4 conversations: 0 mismatches" in capsys.readouterr().out


def test_ctrl_c_in_export_prints_the_resume_command_that_completes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = sqlite_store(tmp_path, "a", 3)
    published = tmp_path / "published.jsonl"
    interrupt_after(monkeypatch, 1)
    assert main(["export", "--endpoints", str(endpoints)]) == 130
    err = capsys.readouterr().err
    assert "error: export interrupted after " in err
    resume = err.split("resume with: ", 1)[1].strip()
    assert resume.startswith(f"eventstore export --endpoints {endpoints}")
    monkeypatch.undo()
    assert main(resume.split()[1:]) == 0
    messages = [json.loads(line) for line in published.read_text().splitlines()]
    got = {(m["sender_id"], m["seq"]) for m in messages}
    assert got == {(f"c-{i:02d}", seq) for i in range(3) for seq in (1, 2)}

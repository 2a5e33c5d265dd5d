"""The CLI's own interface: usage errors are one line and exit code 1, help is whole, every
time option takes the same forms, and the names agree with the HTTP API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventstore import ConfigError, create_tracker_store
from eventstore.cli import main
from eventstore.cli.app import app
from eventstore.times import parse_time


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["events", "--bogus"], "error: No such option: --bogus (see 'eventstore events --help')"),
        (["events", "--limit", "x"], "error: Invalid value for '--limit': "),
        (["events", "--format", "xml"], "error: Invalid value for '--format': 'xml' is not one"),
        (["no-such-command"], "error: No such command 'no-such-command'."),
        (["db", "upgrade", "a", "b"], "error: Got unexpected extra argument"),
        (["events", "--since", "yesterday"], "error: --since must be epoch seconds or an ISO"),
    ],
)
def test_usage_errors_are_one_line_and_exit_code_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    out = capsys.readouterr()
    assert out.err.startswith(message), out.err
    assert out.err.count("\n") == 1 and "─" not in out.err and "Value error" not in out.err
    assert out.out == ""


def _commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    found = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found += [[name, sub] for sub in subcommands]
        else:
            found.append([name])
    return found


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_shows_every_option_whole(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever the terminal (here: none), no help text is cut or boxed to 80 columns."""
    import typer.main

    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "…" not in text and "╭" not in text
    flat = " ".join(text.split())
    cmd = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    for param in cmd.params:
        if getattr(param, "help", None):
            assert " ".join(param.help.split()) in flat, (command, param.name)


def test_no_arguments_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "Commands:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1718409600", 1718409600.0),
        ("1718409600.25", 1718409600.25),
        ("2024-06-15", 1718409600.0),
        ("2024-06-15T00:00:00Z", 1718409600.0),
        ("2024-06-15T02:00:00+02:00", 1718409600.0),
    ],
)
def test_one_time_parser_epoch_or_iso(text: str, expected: float) -> None:
    assert parse_time(text, "--since") == expected


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "tomorrow", "2024-13-01", ""])
def test_times_that_name_no_moment_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--x must be epoch seconds or an ISO 8601"):
        parse_time(text, "--x")


def test_export_and_events_take_the_same_time_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = datetime(2025, 6, 15, tzinfo=UTC).timestamp()
    db = tmp_path / "bot.db"
    with create_tracker_store({"type": "sql", "db": str(db)}) as store:
        for sid, ts in (("before", day - 1), ("after", day + 1)):
            store.append(sid, [{"event": "user", "text": sid, "timestamp": ts}])
    out_file = tmp_path / "published.jsonl"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: sqlite\n  db: {db}\n"
        f"event_broker:\n  type: file\n  path: {out_file}\n"
    )
    code = main(["export", "--endpoints", str(endpoints), "--minimum-timestamp", "2025-06-15"])
    assert code == 0, capsys.readouterr().err
    assert [json.loads(line)["sender_id"] for line in out_file.read_text().splitlines()] == [
        "after"
    ]
    capsys.readouterr()
    assert main(["events", "--endpoints", str(endpoints), "--until", "2025-06-15"]) == 0
    assert [json.loads(line)["sender_id"] for line in capsys.readouterr().out.splitlines()] == [
        "before"
    ]
    # the HTTP parameter's name is accepted by the CLI too
    for flag in ("--type-name", "--type"):
        assert main(["events", "--endpoints", str(endpoints), flag, "bot"]) == 0
        assert capsys.readouterr().out == ""
    assert re.search(r"--type-name, --type", _help(["events"], capsys))


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main([*argv, "--help"])
    return capsys.readouterr().out

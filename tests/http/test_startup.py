"""Start-up text and log redaction: secrets never shown, whatever key or URL holds them."""

from __future__ import annotations

import logging

from pydantic import SecretStr

from eventstore.server import ServerSettings
from eventstore.server.serve import RedactTokens, describe_section, redact


def test_sections_mask_password_keys_and_url_passwords() -> None:
    text = describe_section(
        {
            "type": "pika",
            "url": "amqp://bot:p%40ss@rabbit:5672/vhost",
            "password": "hunter2",
            "sasl_password": "kafka-secret",
            "query": {"sslrootcert": "/ca.pem", "api_key": "k-123"},
            "queues": ["events"],
        }
    )
    for secret in ("p%40ss", "hunter2", "kafka-secret", "k-123"):
        assert secret not in text
    assert "url=amqp://bot:***@rabbit:5672/vhost" in text
    assert "password=***" in text
    assert "sslrootcert=/ca.pem" in text


def test_access_log_records_lose_their_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/events?limit=5&token=abc123&sender_id=x", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    message = record.getMessage()
    assert "abc123" not in message
    assert "/events?limit=5&token=***&sender_id=x" in message
    assert redact("/x?token=a") == "/x?token=***"


def test_settings_never_show_secrets() -> None:
    settings = ServerSettings(
        auth_token=SecretStr("tok-secret"), jwt_secret=SecretStr("jwt-secret")
    )
    assert "tok-secret" not in repr(settings)
    assert "jwt-secret" not in str(settings.model_dump())
    # Only the hand-over to worker processes carries them.
    assert "tok-secret" in settings.to_env()


def test_startup_warns_about_open_ports_and_short_jwt_secrets() -> None:
    from eventstore.factory import create_tracker_store
    from eventstore.server.serve import startup_lines

    store = create_tracker_store(None)
    open_lines = "\n".join(startup_lines(ServerSettings(host="0.0.0.0"), store, 5005))
    assert "listening on http://0.0.0.0:5005" in open_lines
    assert "without --auth-token or --jwt-secret" in open_lines
    assert "history is lost on restart" in open_lines
    short = ServerSettings(host="0.0.0.0", jwt_secret=SecretStr("too-short"))
    short_lines = "\n".join(startup_lines(short, store, 5005))
    assert "the JWT secret is 9 bytes" in short_lines
    assert "too-short" not in short_lines
    assert "without --auth-token" not in short_lines
    quiet = "\n".join(startup_lines(ServerSettings(auth_token=SecretStr("t" * 40)), store, 5005))
    assert "WARNING: listening" not in quiet
    assert "auth: token" in quiet

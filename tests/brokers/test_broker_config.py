"""Broker settings: Rasa's keys and defaults, strict checking, no leaked secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from brokers import create_broker
from brokers.file import FileEventBroker
from brokers.kafka import KafkaBrokerConfig, KafkaEventBroker, producer_options
from brokers.rabbitmq import PikaBrokerConfig, PikaEventBroker, connection_parameters
from brokers.sql import SQLBrokerConfig, SQLEventBroker, build_url
from eventstore.config import parse_config
from eventstore.errors import BrokerError, ConfigError, UnknownBackendError
from eventstore.relay import relay_of, with_broker


def test_rasa_defaults_for_every_broker() -> None:
    pika = PikaBrokerConfig()
    assert (pika.url, pika.port, pika.queues, pika.exchange_name) == (
        "localhost",
        5672,
        ["rasa_core_events"],
        "rasa-exchange",
    )
    assert (pika.connection_attempts, pika.retry_delay_in_seconds) == (20, 5.0)
    kafka = KafkaBrokerConfig(url="k:9092")
    assert (kafka.topic, kafka.partition_by_sender, kafka.security_protocol) == (
        "rasa_core_events",
        False,
        "PLAINTEXT",
    )
    assert kafka.sasl_mechanism == "PLAIN"
    sql = SQLBrokerConfig()
    assert (sql.dialect, sql.db, sql.table_name) == ("sqlite", "events.db", "event_broker_events")
    broker = create_broker({"type": "file"})
    assert isinstance(broker, FileEventBroker) and broker.path == "rasa_event.log"


def test_no_type_means_pika_and_aliases_resolve() -> None:
    assert isinstance(create_broker({"url": "localhost"}), PikaEventBroker)
    assert isinstance(create_broker({"type": "RabbitMQ"}), PikaEventBroker)
    assert isinstance(create_broker({"type": "kafka", "url": "k:9092"}), KafkaEventBroker)
    assert isinstance(create_broker({"type": "sql"}), SQLEventBroker)
    assert create_broker(None) is None


def test_unknown_type_has_a_hint() -> None:
    with pytest.raises(UnknownBackendError, match="did you mean 'kafka'"):
        create_broker({"type": "kafk"})


def test_queue_singular_is_refused_with_a_hint() -> None:
    """Rasa silently ignores ``queue``; here it is an error naming ``queues``."""
    with pytest.raises(ConfigError, match="unknown key 'queue'; did you mean 'queues'"):
        create_broker({"type": "pika", "queue": "q"})


def test_queues_as_a_string_or_a_list() -> None:
    assert PikaBrokerConfig(queues="one").queues == ["one"]  # type: ignore[arg-type]
    assert PikaBrokerConfig(queues=["a", "b"]).queues == ["a", "b"]
    with pytest.raises(ConfigError, match="queues"):
        parse_config(PikaBrokerConfig, {"queues": []}, "event_broker")


def test_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match="key 'port'"):
        create_broker({"type": "pika", "port": "not-a-port"})
    with pytest.raises(ConfigError, match="key 'url' is required"):
        create_broker({"type": "kafka"})
    with pytest.raises(ConfigError, match="security_protocol"):
        create_broker({"type": "kafka", "url": "k:1", "security_protocol": "TLS"})


def test_passwords_never_appear_in_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s3cr3t-pw"
    pika = create_broker({"type": "pika", "username": "u", "password": secret})
    kafka = create_broker(
        {"type": "kafka", "url": "k:1", "sasl_password": secret, "sasl_username": "u"}
    )
    sql = create_broker(
        {"type": "sql", "dialect": "postgresql", "url": "db", "password": secret, "username": "u"}
    )
    for broker in (pika, kafka, sql):
        assert secret not in repr(broker)
        assert secret not in repr(getattr(broker, "settings", ""))
    with pytest.raises(ConfigError) as bad:
        create_broker({"type": "pika", "password": secret, "port": "x"})
    assert secret not in str(bad.value)
    with pytest.raises(ConfigError) as bad_url:
        create_broker({"type": "sql", "url": f"postgresql://u:{secret}@h:notaport/db"})
    assert secret not in str(bad_url.value)
    assert secret not in caplog.text


def test_sql_broker_urls_follow_rasa() -> None:
    assert str(build_url(SQLBrokerConfig())) == "sqlite:///events.db"
    url = build_url(
        SQLBrokerConfig.model_validate(
            {"dialect": "postgresql", "url": "db.example:6543", "db": "ev", "username": "u"}
        )
    )
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "db.example",
        6543,
        "ev",
    )
    verbatim = build_url(SQLBrokerConfig(url="postgresql://u@h:5/x", db="ignored"))
    assert (verbatim.drivername, verbatim.database) == ("postgresql+psycopg", "x")


def test_sql_broker_uses_its_own_table_beside_the_store(tmp_path: Path) -> None:
    """Broker and store in one database: the broker never touches the ``events`` table."""
    from eventstore.stores.sql.store import SQLTrackerStore

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    broker = SQLEventBroker(url)
    store = with_broker(SQLTrackerStore.from_url(url), broker)
    store.append("alice", [{"event": "restart"}])
    assert relay_of(store).stop(10)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT sender_id FROM event_broker_events")).all()
        events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    engine.dispose()
    assert [r.sender_id for r in rows] == ["alice"]
    assert events == 1
    store.close()


def test_unreachable_sql_broker_is_a_broker_error(tmp_path: Path) -> None:
    broker = SQLEventBroker(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    assert broker.is_ready() is False
    with pytest.raises(BrokerError, match="SQL broker"):
        broker.publish({"sender_id": "a", "event": "restart", "seq": 1})


def test_pika_url_forms() -> None:
    params = connection_parameters(
        PikaBrokerConfig.model_validate(
            {"url": "amqp://bob:pw@rabbit.example/vh", "port": 5673, "connection_attempts": 3}
        )
    )
    assert (params.host, params.port, params.virtual_host) == ("rabbit.example", 5673, "vh")
    assert params.credentials.username == "bob"
    assert params.connection_attempts == 3
    plain = connection_parameters(
        PikaBrokerConfig.model_validate({"url": "rabbit", "username": "u", "password": "p"})
    )
    assert (plain.host, plain.port, plain.credentials.username) == ("rabbit", 5672, "u")
    with pytest.raises(ConfigError, match="amqp"):
        connection_parameters(PikaBrokerConfig(url="http://rabbit"))


def test_kafka_security_options() -> None:
    options = producer_options(
        KafkaBrokerConfig.model_validate(
            {
                "url": "a:1, b:2",
                "security_protocol": "SASL_SSL",
                "sasl_username": "u",
                "sasl_password": "p",
                "ssl_cafile": "/ca.pem",
                "client_id": "bot",
            }
        )
    )
    assert options["bootstrap_servers"] == ["a:1", "b:2"]
    assert options["acks"] == "all" and options["enable_idempotence"] is True
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "p")
    assert options["ssl_cafile"] == "/ca.pem" and options["client_id"] == "bot"
    plain = producer_options(KafkaBrokerConfig(url=["a:1"]))
    assert "sasl_plain_password" not in plain and "ssl_cafile" not in plain


def test_unreachable_kafka_fails_fast_as_a_broker_error() -> None:
    from tests.servers.kafka import free_port

    broker = KafkaEventBroker(
        KafkaBrokerConfig(url=[f"127.0.0.1:{free_port()}"], max_block_ms=1000)
    )
    with pytest.raises(BrokerError):
        broker.publish({"sender_id": "a", "event": "restart", "seq": 1})
        broker.flush(5)
    assert broker.is_ready() is False
    broker.close()


def test_sql_broker_table_on_oracle_and_mysql() -> None:
    """Oracle cannot run here: the DDL and INSERT are compiled for it instead."""
    from sqlalchemy.dialects import mysql, oracle
    from sqlalchemy.schema import CreateSequence, CreateTable

    table = SQLEventBroker("sqlite://").table
    insert = str(table.insert().values(sender_id="a", data="{}").compile(dialect=oracle.dialect()))
    assert "event_broker_events_seq.nextval" in insert
    sequence = table.c.id.default
    assert isinstance(sequence, sa.Sequence)
    assert "CREATE SEQUENCE event_broker_events_seq" in str(
        CreateSequence(sequence).compile(dialect=oracle.dialect())
    )
    assert "CLOB" in str(CreateTable(table).compile(dialect=oracle.dialect()))
    ddl = str(CreateTable(table).compile(dialect=mysql.dialect()))
    assert "LONGTEXT" in ddl and "AUTO_INCREMENT" in ddl


def test_pika_tls_from_rasas_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RABBITMQ_SSL_CLIENT_CERTIFICATE and _KEY give a TLS client context, as in Rasa."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bot")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert connection_parameters(PikaBrokerConfig(url="rabbit")).ssl_options is None
    monkeypatch.setenv("RABBITMQ_SSL_CLIENT_CERTIFICATE", str(cert_file))
    monkeypatch.setenv("RABBITMQ_SSL_CLIENT_KEY", str(key_file))
    params = connection_parameters(PikaBrokerConfig(url="rabbit"))
    assert isinstance(params.ssl_options.context, ssl.SSLContext)
    assert params.ssl_options.server_hostname == "rabbit"
    monkeypatch.setenv("RABBITMQ_SSL_CLIENT_KEY", str(tmp_path / "missing.key"))
    with pytest.raises(ConfigError, match="TLS client certificate cannot be loaded"):
        connection_parameters(PikaBrokerConfig(url="rabbit"))

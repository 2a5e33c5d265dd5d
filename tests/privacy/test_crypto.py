"""The event cipher: AES-GCM round trips, key ids, and clear errors instead of garbage."""

from __future__ import annotations

import base64

import pytest

from eventstore.errors import ConfigError, DecryptionError
from eventstore.privacy.crypto import EventCipher, generate_key

KEY_A = generate_key()
KEY_B = generate_key()


def cipher(monkeypatch: pytest.MonkeyPatch, value: str) -> EventCipher:
    monkeypatch.setenv("ES_TEST_KEYS", value)
    return EventCipher.from_env("ES_TEST_KEYS")


def test_round_trip_with_key_id_prefix_and_no_clear_text(monkeypatch: pytest.MonkeyPatch) -> None:
    box = cipher(monkeypatch, f"k1:{KEY_A}")
    body = '{"event":"user","text":"jane@example.org"}'
    stored = box.encrypt(body, "alice")
    assert stored.startswith("enc1:k1:")
    assert "jane" not in stored and "user" not in stored
    assert box.encrypt(body, "alice") != stored  # a fresh nonce each time
    assert box.decrypt(stored, "alice") == body
    assert box.is_current(stored)


def test_plain_values_written_before_encryption_pass_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = cipher(monkeypatch, f"k1:{KEY_A}")
    assert box.decrypt('{"event":"restart"}', "a") == '{"event":"restart"}'
    assert not box.is_current('{"event":"restart"}')


def test_rotation_reads_old_and_new_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    old = cipher(monkeypatch, f"k1:{KEY_A}").encrypt("old body", "s")
    both = cipher(monkeypatch, f"k2:{KEY_B},k1:{KEY_A}")
    assert both.decrypt(old, "s") == "old body"
    assert not both.is_current(old)
    new = both.encrypt("new body", "s")
    assert new.startswith("enc1:k2:") and both.is_current(new)


def test_wrong_or_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = cipher(monkeypatch, f"k1:{KEY_A}").encrypt("secret", "s")
    with pytest.raises(DecryptionError, match=r"key id 'k1'.*does not hold"):
        cipher(monkeypatch, f"k2:{KEY_B}").decrypt(stored, "s")
    with pytest.raises(DecryptionError, match="wrong key or altered data"):
        cipher(monkeypatch, f"k1:{KEY_B}").decrypt(stored, "s")
    with pytest.raises(DecryptionError, match="wrong key or altered data"):
        cipher(monkeypatch, f"k1:{KEY_A}").decrypt(stored, "mallory")  # moved elsewhere
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptionError):
        cipher(monkeypatch, f"k1:{KEY_A}").decrypt(tampered, "s")


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "is not set"),
        ("nokey", "'id:base64key'"),
        ("k1:!!!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "AES-256 needs 32"),
        (f"bad id:{KEY_A}", "key id"),
        (f"k1:{KEY_A},k1:{KEY_B}", "appears twice"),
    ],
)
def test_key_list_errors(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cipher(monkeypatch, value)

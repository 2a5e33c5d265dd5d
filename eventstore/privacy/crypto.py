"""Encryption at rest of stored event bodies: AES-256-GCM with keys from the environment.

The environment variable (the SQL store's ``encryption_keys_env``) holds one or more keys,
``id:base64key`` separated by commas; the first encrypts, every one decrypts, so a key is
rotated without downtime: put the new key first, keep the old one after it, run
``eventstore rotate-key``, then remove the old one. A stored value reads
``enc1:<key id>:<base64 of nonce + ciphertext + tag>``; the conversation id is bound in as
associated data, so a body copied to another conversation does not decrypt. A value that
is plain JSON (written before encryption was turned on) is read as it is until
``rotate-key`` encrypts it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any

from eventstore.errors import ConfigError, DecryptionError, MissingDependencyError

PREFIX = "enc1:"
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
NONCE_BYTES = 12


def _aesgcm() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise MissingDependencyError("cryptography", "encryption") from exc
    return AESGCM


def generate_key() -> str:
    """A fresh random 256-bit key, base64 (for ``id:key`` in the environment variable)."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


class EventCipher:
    """Encrypts and decrypts event bodies; the first key encrypts, all of them decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]], source: str = "the key list") -> None:
        if not keys:
            raise ConfigError(f"{source} holds no encryption key")
        aesgcm = _aesgcm()
        self.source = source
        self.current_id = keys[0][0]
        self._keys: dict[str, Any] = {}
        for key_id, key in keys:
            if not _KEY_ID.fullmatch(key_id):
                raise ConfigError(f"{source}: key id {key_id!r} must be 1-32 of A-Z a-z 0-9 _ . -")
            if len(key) != 32:
                raise ConfigError(
                    f"{source}: key {key_id!r} is {len(key)} bytes; AES-256 needs 32 "
                    "(base64 of 32 random bytes)"
                )
            if key_id in self._keys:
                raise ConfigError(f"{source}: key id {key_id!r} appears twice")
            self._keys[key_id] = aesgcm(key)

    @classmethod
    def from_env(cls, name: str) -> EventCipher:
        """Keys from environment variable ``name`` (``id:base64key[,id:base64key...]``)."""
        value = os.environ.get(name)
        source = f"environment variable '{name}'"
        if not value:
            raise ConfigError(f"privacy.encryption: {source} holding the keys is not set")
        keys = []
        for item in value.split(","):
            key_id, sep, encoded = item.strip().partition(":")
            if not sep:
                raise ConfigError(f"{source}: each key must read 'id:base64key'")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"{source}: key {key_id!r} is not valid base64") from None
            keys.append((key_id.strip(), key))
        return cls(keys, source)

    def encrypt(self, plaintext: str, sender_id: str) -> str:
        """The stored form of ``plaintext`` under the current key."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current_id].encrypt(
            nonce, plaintext.encode("utf-8"), sender_id.encode("utf-8", "surrogatepass")
        )
        return f"{PREFIX}{self.current_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, stored: str, sender_id: str) -> str:
        """The plaintext of a stored value; plain (never encrypted) values pass through.

        A key id not configured, or a key that does not open the value (wrong key,
        tampered data, another conversation's body), is a ``DecryptionError``.
        """
        if not stored.startswith(PREFIX):
            return stored
        key_id, _, payload = stored[len(PREFIX) :].partition(":")
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionError(
                f"an event of conversation {sender_id!r} is encrypted with key id {key_id!r}, "
                f"which {self.source} does not hold (it has: {', '.join(self._keys)})"
            )
        try:
            raw = base64.b64decode(payload, validate=True)
            plain = aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], sender_id.encode("utf-8", "surrogatepass")
            )
        except Exception as exc:  # InvalidTag, bad base64, short payload
            raise DecryptionError(
                f"an event of conversation {sender_id!r} does not decrypt with key "
                f"{key_id!r} of {self.source}: wrong key or altered data"
            ) from exc
        return str(plain.decode("utf-8"))

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is already encrypted with the current key (rotation skips it)."""
        return stored.startswith(f"{PREFIX}{self.current_id}:")

"""File broker: one JSON message body per line, appended to a file (Rasa's ``type: file``).

Features: a batch is written with one ``write`` and flushed before ``publish_many``
returns; ``fsync: true`` also forces it to disk.
Options: ``path`` (``rasa_event.log``), ``fsync`` (false).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from typing import IO, Any, ClassVar

from brokers.base import EventBroker, encode_message
from eventstore.config import StrictConfig
from eventstore.errors import BrokerError, PublishError


class FileBrokerConfig(StrictConfig):
    """``event_broker: {type: file}`` keys."""

    path: str = "rasa_event.log"
    fsync: bool = False


class FileEventBroker(EventBroker):
    """Appends JSON lines to ``path``; the file is opened lazily and kept open."""

    Config: ClassVar[type[StrictConfig] | None] = FileBrokerConfig

    def __init__(self, path: str | os.PathLike[str] = "rasa_event.log", fsync: bool = False):
        self.path = os.fspath(path)
        self.fsync = fsync
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> FileEventBroker:
        return cls(path=settings.path, fsync=settings.fsync)

    def _open(self) -> IO[bytes]:
        if self._file is None:
            try:
                self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across calls
            except OSError as exc:
                raise BrokerError(f"file broker cannot open {self.path!r}: {exc.strerror}") from exc
        return self._file

    def publish(self, message: dict[str, Any]) -> None:
        self.publish_many([message])

    def publish_many(self, messages: Iterable[dict[str, Any]]) -> None:
        payload = b"".join(encode_message(m) + b"\n" for m in messages)
        if not payload:
            return
        with self._lock:
            handle = self._open()
            try:
                handle.write(payload)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            except OSError as exc:
                # a partial line may have been written; reopen (a consumer skips bad lines)
                self._close_file()
                raise PublishError(
                    f"file broker cannot write {self.path!r}: {exc.strerror}", confirmed=0
                ) from exc

    def is_ready(self) -> bool:
        directory = os.path.dirname(os.path.abspath(self.path))
        return os.access(directory, os.W_OK)

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def close(self) -> None:
        with self._lock:
            self._close_file()

    def __repr__(self) -> str:
        return f"FileEventBroker(path={self.path!r})"

"""A small Server-Sent Events reader over httpx streaming, as a browser's EventSource parses.

Messages are ``{"id", "event", "data"}`` (data parsed as JSON); comment lines are kept in
``comments``. A stream that stays silent past the client's read timeout raises, so a
missing event fails a test instead of hanging it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


class SseStream:
    """``GET path`` as an event stream; use as a context manager."""

    def __init__(
        self,
        client: httpx.Client,
        path: str = "/events/stream",
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._context = client.stream("GET", path, params=params, headers=headers)
        self.response = self._context.__enter__()
        self.comments: list[str] = []
        self.retry: int | None = None
        self._lines: Iterator[str] | None = None

    def __enter__(self) -> SseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Hang up (the server notices and ends the stream)."""
        self._context.__exit__(None, None, None)

    def next(self) -> dict[str, Any]:
        """The next message; comments and ``retry:`` on the way are recorded."""
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in self._iter_lines():
            if line == "":
                if data:
                    return {
                        "id": fields.get("id"),
                        "event": fields.get("event", "message"),
                        "data": json.loads("\n".join(data)),
                    }
                fields.clear()
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)
            else:
                fields[name] = value
        raise AssertionError("the event stream ended")

    def take(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` messages."""
        return [self.next() for _ in range(count)]

    def next_comment(self) -> str:
        """Read until a comment line; a message before it is an error."""
        for line in self._iter_lines():
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                return self.comments[-1]
            assert not line.startswith(("data", "id")), f"a message came first: {line!r}"
        raise AssertionError("the event stream ended")

    def _iter_lines(self) -> Iterator[str]:
        if self._lines is None:
            assert self.response.status_code == 200, self.response.read()
            assert self.response.headers["content-type"].startswith("text/event-stream")
            self._lines = self.response.iter_lines()
        return self._lines

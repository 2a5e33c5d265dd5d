"""Hostile input at the HTTP level: a real uvicorn server on a loopback port, every backend.

Random and malformed bodies for POST/PUT ``/conversations/{id}/tracker/events``, hostile
conversation ids in the path and junk query parameters on the read routes (hypothesis,
40 examples on memory, SQLite and PostgreSQL; 12 on the other backends), then fixed
hostile requests (huge, deep, surrogates, out-of-range numbers, broken HTTP) on every
backend. Whatever arrives: never a 5xx, the server keeps answering ``/health``, an error
is Rasa's JSON body, a refused write stores nothing, and an accepted one stores exactly
the request's events, which read back byte for byte (from the store and over HTTP).

``test_pinned_hostile_reads`` / ``test_pinned_hostile_writes`` pin the cases that once
broke a backend (newline ids, lone surrogates, deep nesting, integers past 2^63, lookalike
ids on MariaDB), so they stay fixed.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from eventstore import EventValidationError, create_tracker_store
from eventstore.events import validate_sender_id
from eventstore.server import ServerSettings
from eventstore.stores.base import TrackerStore
from tests.http.conftest import LiveServer
from tests.reliability.conftest import BACKENDS
from tests.reliability.test_hostile_input import (
    NASTY_STRINGS,
    any_event,
    json_values,
    valid_events,
)
from tests.servers.redis import drop_prefix

HTTP_BACKENDS = ["memory", *BACKENDS]
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: The body limit the servers here run with (small, so "huge" bodies stay cheap to send).
BODY_LIMIT = 512 * 1024


# -- the server ---------------------------------------------------------------------------
#: The property tests run on these; the pinned cases and big bodies on every backend.
FAST_BACKENDS = ["memory", "sqlite", "postgresql"]


def store_config(name: str, request: pytest.FixtureRequest, directory: Path) -> dict[str, Any]:
    """The tracker_store section of backend ``name``, with names no other test uses."""
    tag = uuid.uuid4().hex[:12]
    if name == "memory":
        return {"type": "in_memory"}
    if name == "sqlite":
        return {"type": "sql", "url": f"sqlite:///{directory / 'http.db'}"}
    if name in ("postgresql", "mariadb"):
        fixture = "postgres_url" if name == "postgresql" else "mysql_url"
        return {"type": "sql", "url": request.getfixturevalue(fixture)}
    if name == "redis":
        return {"type": "redis", "url": request.getfixturevalue("redis_url"), "key_prefix": tag}
    if name == "mongo":
        url = request.getfixturevalue("mongo_url")
        return {"type": "mongod", "url": url, "db": "http_rel", "collection": f"h_{tag}"}
    return {"type": "dynamo", **request.getfixturevalue("dynamo_server").store_config()}


@pytest.fixture(scope="module", params=HTTP_BACKENDS)
def http_backend(request: pytest.FixtureRequest) -> str:
    """The backend the server of a test runs on."""
    return str(request.param)


class OneLineErrors(logging.Filter):
    """Log a server-side exception as one line instead of a formatted traceback.

    Python 3.11 formats tracebacks with ``ast.parse``, whose recursion bookkeeping is
    shared between threads: the server thread logging a traceback while pytest formats a
    failure raises ``SystemError: AST constructor recursion depth mismatch``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.msg} [{type(exc).__name__}: {str(exc)[:300]}]"
            record.exc_info = None
        return True


@contextmanager
def one_line_server_errors() -> Iterator[None]:
    """``OneLineErrors`` on the loggers of the server threads, while the block runs."""
    one_line = OneLineErrors()
    names = ("uvicorn.error", "eventstore.server")
    for name in names:
        logging.getLogger(name).addFilter(one_line)
    try:
        yield
    finally:
        for name in names:
            logging.getLogger(name).removeFilter(one_line)


@pytest.fixture(scope="module")
def live(
    http_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server without auth over ``http_backend``, shared by the module's tests."""
    config = store_config(http_backend, request, tmp_path_factory.mktemp("http"))
    with one_line_server_errors():
        store = create_tracker_store(config)
        server = LiveServer(store, ServerSettings(max_body_bytes=BODY_LIMIT))
        yield server
        server.stop()
    if config["type"] == "redis":
        drop_prefix(config["url"], config["key_prefix"])


#: httpx options for plain HTTP on loopback: no TLS context to build (it costs ~30 ms per
#: client, which adds up over hundreds of tests), no proxy settings from the environment.
PLAIN: dict[str, Any] = {"verify": False, "trust_env": False}


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    """A client of ``live``."""
    with live.client(**PLAIN) as http:
        yield http


# -- what every response must satisfy -----------------------------------------------------
def assert_sane(response: httpx.Response, note: str = "") -> None:
    """No 5xx; an error is Rasa's JSON error body with the response's status as ``code``."""
    what = f"{response.request.method} {str(response.request.url)[:300]}{note}"
    assert response.status_code < 500, f"{what} -> {response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), what
        body = response.json()
        assert body["status"] == "failure", what
        assert isinstance(body["message"], str) and body["message"], what
        assert isinstance(body["reason"], str) and body["reason"], what
        assert body["code"] == response.status_code, what


def assert_alive(client: httpx.Client) -> None:
    """The server still answers, and says its store is fine."""
    health = client.get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"


def tracker_path(sid: str, suffix: str = "/tracker/events") -> str:
    """The URL path of a conversation; every character of the id percent-encoded.

    Dots too: httpx would otherwise resolve an id of ``..`` as a path segment.
    """
    return "/conversations/" + quote(sid, safe="").replace(".", "%2E") + suffix


def stored(store: TrackerStore, sid: str) -> list[dict[str, Any]] | None:
    """The conversation's events, read from the store itself; None for an id it refuses."""
    try:
        validate_sender_id(sid)
    except EventValidationError:
        return None
    return store.read(sid)


def canonical(event: dict[str, Any], keep_timestamp: bool) -> str:
    """An event's JSON text, key order aside, with or without its timestamp."""
    if not keep_timestamp:
        event = {k: v for k, v in event.items() if k != "timestamp"}
    return json.dumps(event, sort_keys=True)


def assert_same_events(sent: list[Any], got: list[dict[str, Any]]) -> None:
    """What was stored is what was sent, byte for byte (a timestamp is added when not sent)."""
    assert len(got) == len(sent), (sent, got)
    for given_event, back in zip(sent, got, strict=True):
        has_ts = bool(given_event.get("timestamp"))
        assert canonical(back, has_ts) == canonical(given_event, has_ts)


def events_of(body: Any) -> list[Any] | None:
    """The events a parsed body stands for (one object or a list), None if neither."""
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return body
    return None


def check_write(
    live: LiveServer, client: httpx.Client, method: str, sid: str, sent: Any, **kwargs: Any
) -> httpx.Response:
    """Send a write; check the all-or-nothing and read-back properties.

    ``sent`` is the body as Python (``NOT_JSON`` when the bytes are not JSON at all).
    """
    before = stored(live.store, sid)
    response = client.request(method, tracker_path(sid), **kwargs)
    after = stored(live.store, sid)
    assert_sane(
        response, " (the conversation " + ("changed)" if after != before else "is unchanged)")
    )
    if response.status_code != 200:
        assert after == before, f"a refused {method} changed the conversation"
        return response
    events = events_of(sent)
    assert events is not None and before is not None and after is not None, response.text
    assert response.json()["sender_id"] == sid
    if method == "PUT":
        assert_same_events(events, after)
    else:
        assert after[: len(before)] == before, "a POST changed events already stored"
        new = after[len(before) :]
        cut = len(new) - len(events)
        assert cut >= 0, (events, new)
        prefix = new[:cut]
        # a conversation's first POST gets Rasa's session start in front, nothing else does
        if prefix:
            assert not before and prefix[0].get("name") == "action_session_start", prefix
        assert_same_events(events, new[cut:])
    over_http = client.get(tracker_path(sid, "/tracker"), params={"include_events": "ALL"})
    assert over_http.status_code == 200, over_http.text
    assert [canonical(e, True) for e in over_http.json()["events"]] == [
        canonical(e, True) for e in after
    ]
    return response


NOT_JSON = object()

# -- hostile ids ---------------------------------------------------------------------------
PATH_NASTIES = [
    "..",
    ".",
    "../x",
    "a/b",
    "%2F",
    "%00",
    "?x=1",
    "#frag",
    "null",
    "undefined",
    "[]",
    "{}",
    '{"$gt": ""}',
    "$where",
    "this.sender_id != ''",
    "' OR '1'='1",
    "\\",
    " ",
    "\u00a0",
    "\r\nX-Injected: 1",
]
#: Any unicode but lone surrogates (a URL cannot carry them; see PINNED_READS for bytes
#: that are not UTF-8), control characters included.
UNICODE = st.characters(exclude_categories=["Cs"])
hostile_ids = st.one_of(
    st.text(UNICODE, min_size=1, max_size=60),
    st.text(UNICODE, min_size=1, max_size=60),
    st.sampled_from(NASTY_STRINGS + PATH_NASTIES),
    st.integers(min_value=250, max_value=2000).map(lambda n: "x" * n),  # around the limit
    st.just(""),
)


# -- 1. random bodies ------------------------------------------------------------------------
#: Half the bodies are valid events (stored: the read-back property), half anything.
bodies = st.one_of(
    st.lists(valid_events, min_size=1, max_size=4),
    st.lists(valid_events, min_size=1, max_size=4),
    st.lists(any_event, max_size=4),
    any_event,
    json_values,
)


#: One random write: method, id, body, how it is encoded, write options.
random_writes = given(
    method=st.sampled_from(["POST", "PUT"]),
    sid=hostile_ids,
    body=bodies,
    ascii_only=st.booleans(),
    params=st.just({})
    | st.deferred(
        lambda: st.dictionaries(
            st.sampled_from(["include_events", "expected_version"]),
            junk | st.sampled_from(["0", "1", "3", "ALL", "NONE", "applied"]),
            max_size=2,
        )
    ),
    if_match=st.none()
    | st.none()
    | st.sampled_from(['"0"', 'W/"3"', "1"])
    | st.from_regex(r"[!-~]([ -~]{0,10}[!-~])?", fullmatch=True),
)


@dataclass(frozen=True)
class RandomWrite:
    """What ``random_writes`` drew."""

    method: str
    sid: str
    body: Any
    ascii_only: bool
    params: dict[str, str]
    if_match: str | None

    def check(self, live: LiveServer, client: httpx.Client) -> None:
        """Send it; it stores exactly its events or nothing, and the server lives on."""
        raw = json.dumps(self.body, ensure_ascii=self.ascii_only).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.if_match is not None:
            headers["If-Match"] = self.if_match
        response = check_write(
            live, client, self.method, self.sid, self.body,
            content=raw, headers=headers, params=self.params,
        )  # fmt: skip
        why = response.json()["message"][:45] if response.status_code >= 400 else ""
        event(f"{self.method} -> {response.status_code} {why}")
        assert_alive(client)


@pytest.mark.parametrize("http_backend", FAST_BACKENDS, indirect=True)
@HYPOTHESIS
@random_writes
def test_random_bodies_store_exactly_or_nothing(
    live: LiveServer, client: httpx.Client, http_backend: str, **drawn: Any
) -> None:
    RandomWrite(**drawn).check(live, client)


@pytest.mark.parametrize(
    "http_backend", sorted(set(HTTP_BACKENDS) - set(FAST_BACKENDS)), indirect=True
)
@settings(HYPOTHESIS, max_examples=12)
@random_writes
def test_random_bodies_on_the_other_backends(
    live: LiveServer, client: httpx.Client, http_backend: str, **drawn: Any
) -> None:
    """The same property on MariaDB, Redis, MongoDB and DynamoDB, fewer examples (slower)."""
    RandomWrite(**drawn).check(live, client)


#: Ids the store accepts (1-255 characters, no NUL), as hostile as they come.
valid_ids = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
            min_size=1, max_size=60),
    st.sampled_from([i for i in NASTY_STRINGS + PATH_NASTIES if i and "\x00" not in i]),
)  # fmt: skip


@pytest.mark.parametrize("http_backend", ["memory"], indirect=True)
@pytest.mark.parametrize(
    "sid",
    [
        "a/b", "/", "a/tracker", "a/tracker/events", "..", ".", " ", "%2F", "?x=1#y", "\t", "\r",
        "a\nb", "\n",
    ],
)  # fmt: skip
def test_every_valid_id_is_addressable(live: LiveServer, client: httpx.Client, sid: str) -> None:
    """Each id the store accepts can be written, read and deleted over HTTP, as itself."""
    live.store.delete(sid)
    written = client.post(tracker_path(sid), json=[{"event": "user", "text": "hi"}])
    assert written.status_code == 200, written.text
    assert written.json()["sender_id"] == sid
    read = client.get(tracker_path(sid, "/tracker"), params={"include_events": "ALL"})
    assert read.status_code == 200 and read.json()["sender_id"] == sid
    assert [e["event"] for e in read.json()["events"]][-1] == "user"
    deleted = client.delete(tracker_path(sid, ""))
    assert deleted.status_code == 200 and deleted.json()["deleted_events"] == 4
    assert live.store.read(sid) == []


@pytest.mark.parametrize("http_backend", FAST_BACKENDS, indirect=True)
@HYPOTHESIS
@given(
    method=st.sampled_from(["POST", "PUT"]),
    sid=valid_ids,
    events=st.lists(valid_events, min_size=1, max_size=4),
    ascii_only=st.booleans(),
)
def test_valid_events_with_hostile_content_are_stored_exactly(
    live: LiveServer,
    client: httpx.Client,
    http_backend: str,
    method: str,
    sid: str,
    events: list[dict[str, Any]],
    ascii_only: bool,
) -> None:
    """Valid events under any valid id: always stored (200), read back byte for byte."""
    assume(not has_lone_surrogate(events))  # refused: not valid unicode (test_events.py)
    raw = json.dumps(events, ensure_ascii=ascii_only).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    response = check_write(live, client, method, sid, events, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert_alive(client)


def test_ids_that_differ_only_in_case_accents_or_spaces_are_distinct(
    live: LiveServer, client: httpx.Client, http_backend: str, request: pytest.FixtureRequest
) -> None:
    """``alice``, ``Alice``, ``alice `` and ``álice`` are four conversations, not one."""
    base = f"alice-{uuid.uuid4().hex[:8]}"
    ids = [base, base.upper(), base + " ", base.replace("a", "\u00e1", 1), base + "\u0301"]
    for sid in ids:
        response = client.post(tracker_path(sid), json=[{"event": "user", "text": sid}])
        assert response.status_code == 200, (sid, response.text)
    for sid in ids:
        texts = [e["text"] for e in live.store.read(sid) if e["event"] == "user"]
        assert texts == [sid], f"{sid!r} holds {texts}"


# -- 2. malformed bytes --------------------------------------------------------------------
MALFORMED = [
    b"",
    b"{",
    b"[",
    b"]",
    b'{"event": "user", "text": "x"',
    b'[{"event": "user"},',
    b"{'event': 'user'}",
    b'{"event": "user"}{"event": "user"}',
    b'{"event": "user",}',
    b"NaN",
    b"Infinity",
    b'{"event": "slot", "name": "x", "value": NaN}',
    b'{"event": "slot", "name": "x", "value": -Infinity}',
    b'{"event": "user", "text": "x", "timestamp": 1e999}',
    b'{"event": "user", "timestamp": "yesterday"}',
    b'{"event": "slot", "name": "x", "value": 1e400}',
    b'{"event": "slot", "name": "x", "value": 123456789012345678901234567890}',
    b'{"event": "user", "text": "dup", "text": "licate"}',
    b'{"event": "user", "text": "\\u0000\\u001f\\u007f"}',
    b"\xef\xbb\xbf" + b'{"event": "pause"}',  # a UTF-8 byte order mark
    b'{"event": "user", "text": "\xff\xfe"}',  # not UTF-8
    '{"event": "user", "text": "é"}'.encode("latin-1"),
    '{"event": "pause"}'.encode("utf-16"),
    b"\x00" * 16,
    b"null",
    b"true",
    b'"a string"',
    b"[[[[[[[[[[]]]]]]]]]]",
    b'{"event": {"$gt": ""}}',
    b'{"event": "user", "$where": "sleep(1000)"}',
    b'{"__proto__": {"admin": true}, "event": "pause"}',
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
]


def parse_like_python(raw: bytes) -> Any:
    """The body as Python's json module reads it (``NOT_JSON`` when it cannot)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return NOT_JSON


@pytest.mark.parametrize("http_backend", FAST_BACKENDS, indirect=True)
@HYPOTHESIS
@given(
    method=st.sampled_from(["POST", "PUT"]),
    raw=st.one_of(
        st.sampled_from(MALFORMED),
        st.binary(max_size=200),
        # valid JSON of events, cut short or with bytes flipped
        st.builds(
            lambda events, cut: json.dumps(events).encode()[:cut],
            st.lists(valid_events, min_size=1, max_size=3),
            st.integers(min_value=0, max_value=200),
        ),
        st.builds(
            lambda events, at, byte: _flip(json.dumps(events).encode(), at, byte),
            st.lists(valid_events, min_size=1, max_size=2),
            st.integers(min_value=0, max_value=400),
            st.integers(min_value=0, max_value=255),
        ),
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_malformed_bytes_are_refused_cleanly(
    live: LiveServer, client: httpx.Client, method: str, raw: bytes, content_type: str
) -> None:
    sid = "malformed"
    sent = parse_like_python(raw)
    headers = {"Content-Type": content_type} if content_type else {}
    response = check_write(live, client, method, sid, sent, content=raw, headers=headers)
    event(f"{method} -> {response.status_code}")
    if response.status_code == 200:
        # accepted: it must have been JSON of events, read as any JSON parser would
        assert parse_like_python(raw) is not NOT_JSON
    assert_alive(client)


def has_lone_surrogate(value: Any) -> bool:
    """Whether a parsed body holds a string UTF-8 cannot encode (a lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (TypeError, ValueError):
        return False
    return False


def _flip(data: bytes, at: int, byte: int) -> bytes:
    at = at % len(data)
    return data[:at] + bytes([byte]) + data[at + 1 :]


# -- 3. huge and deep bodies ---------------------------------------------------------------
def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body in pieces, sent chunked (no Content-Length, so the limit is met mid-read)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def nested(depth: int, as_list: bool) -> bytes:
    """A slot event whose value is nested ``depth`` levels deep."""
    inner = "[" * depth + "1" + "]" * depth if as_list else '{"a":' * depth + "1" + "}" * depth
    return ('{"event": "slot", "name": "deep", "value": ' + inner + "}").encode()


def huge_body() -> bytes:
    return json.dumps([{"event": "bot", "text": "x" * 1024}] * (BODY_LIMIT // 1000)).encode()


#: (name, body, send it chunked, must be refused). The rest may be stored (whole) or
#: refused; none may give a 5xx. Values nested deeper than 64 levels are refused on every
#: backend (``eventstore.events.MAX_NESTING``; MongoDB's own limit is 100).
BIG_CASES: list[tuple[str, Callable[[], bytes], bool, bool]] = [
    ("over-limit", huge_body, False, True),
    ("over-limit-chunked", huge_body, True, True),
    ("just-under-limit", lambda: json.dumps([{"event": "pause"}] * 300).encode(), False, False),
    (
        "one-event-over-256kib",
        lambda: json.dumps({"event": "bot", "text": "y" * 300_000}).encode(),
        False,
        True,
    ),
    ("deep-dict-60", lambda: nested(60, False), False, False),
    ("deep-dict-100", lambda: nested(100, False), False, True),
    ("deep-list-400", lambda: nested(400, True), False, True),
    ("deep-dict-400", lambda: nested(400, False), False, True),
    ("deep-dict-600", lambda: nested(600, False), False, True),
    ("deep-list-5000", lambda: nested(5000, True), False, True),
    ("deep-list-100000", lambda: b"[" * 100_000 + b"]" * 100_000, True, True),
]

# -- 3b. broken HTTP ---------------------------------------------------------------------
RAW_REQUESTS = {
    "url-100k": b"GET /conversations/" + b"x" * 100_000 + b"/tracker HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-1m": b"GET /events HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 1_000_000 + b"\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
    "bad-request-line": b"GET\r\n\r\n",
    "bad-version": b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    "negative-length": b"POST /conversations/a/tracker/events HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: -5\r\n\r\n",
    "length-and-chunked": b"POST /conversations/a/tracker/events HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad-chunk": b"POST /conversations/a/tracker/events HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "truncated-body": b"POST /conversations/a/tracker/events HTTP/1.1\r\nHost: x\r\n"
    b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{"event": ',
}


@pytest.mark.parametrize("http_backend", ["memory"], indirect=True)
@pytest.mark.parametrize("name", sorted(RAW_REQUESTS))
def test_broken_http_never_gets_a_5xx_nor_kills_the_server(
    live: LiveServer, client: httpx.Client, name: str
) -> None:
    """Below the app (uvicorn answers some of these in plain text): 4xx or a closed socket."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        try:
            sock.sendall(RAW_REQUESTS[name])
            sock.shutdown(socket.SHUT_WR)  # a truncated body ends here
            answer = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    assert status is None or 400 <= status < 500, answer[:300]
    assert not stored(live.store, "a")
    assert_alive(client)


#: A path parameter in a route template, with its optional converter (``{id:path}``).
PARAM = re.compile(r"\{([a-z_]+)(:[a-z]+)?\}")


def app_routes(routes: Any) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route of a Starlette/FastAPI app, included ones too."""
    for route in routes:
        inner = getattr(route, "routes", None) or getattr(
            getattr(route, "original_router", None), "routes", None
        )
        if inner and not hasattr(route, "methods"):
            yield from app_routes(inner)
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                yield method, PARAM.sub(r"{\1}", route.path)


@pytest.mark.parametrize("http_backend", ["memory"], indirect=True)
def test_hostile_paths_do_not_grow_the_metrics(live: LiveServer, client: httpx.Client) -> None:
    """Metrics label requests by route template: ids and junk paths never become labels
    (one label per hostile path would be a memory leak, and would publish the ids)."""
    marker = f"zz{uuid.uuid4().hex[:10]}"
    for i in range(20):
        client.get(tracker_path(f"{marker}-{i}", "/tracker"))
        client.post(tracker_path(f"{marker}-{i}/x"), content=b"{")
        client.get(f"/{marker}/no/such/route/{i}")
        client.delete(f"/conversations/{marker}{i}")
    text = client.get("/metrics").text
    assert marker not in text
    labels = set(re.findall(r'route="([^"]*)"', text))
    templates = {PARAM.sub(r"{\1}", path) for _, path in app_routes(live.app.routes)}
    assert labels <= templates | {"<unmatched>"}, labels - templates


# -- 4. hostile query parameters ----------------------------------------------------------


def cursor_of(value: Any) -> str:
    """A cursor as the server makes them (base64 JSON), around any value."""
    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: Integers on both sides of every column's range (int4, int8, past 64 bits).
ANY_INT = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from(
    [2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64]
)
junk: st.SearchStrategy[str] = st.one_of(
    st.text(UNICODE, max_size=30),  # NUL and control characters included
    ANY_INT.map(str),
    st.floats().map(repr),
    st.sampled_from(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
            "1e400",
            "-1e400",
            "-0",
            "0x10",
            "1_000",
            " 1",
            "1 ",
            "",
            "true",
            "null",
            "[]",
            "{}",
            "$where",
            '{"$gt": ""}',
            "'; --",
            "%00",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["p", "o", "k", "x"]),
        ANY_INT
        | st.booleans()
        | st.text(UNICODE, max_size=10)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.none(),
        max_size=2,
    ).map(cursor_of),
)
EVENTS_PARAMS = [
    "sender_id",
    "type_name",
    "intent",
    "action",
    "since",
    "until",
    "after",
    "limit",
    "cursor",
    "format",
]


@pytest.mark.parametrize("http_backend", FAST_BACKENDS, indirect=True)
@HYPOTHESIS
@given(
    events_params=st.dictionaries(st.sampled_from(EVENTS_PARAMS), junk, max_size=4),
    list_params=st.dictionaries(st.sampled_from(["limit", "cursor"]), junk, max_size=2),
    tracker_params=st.dictionaries(
        st.sampled_from(["include_events", "until"]),
        junk | st.sampled_from(["ALL", "all", "APPLIED", "AFTER_RESTART", "NONE"]),
        max_size=2,
    ),
    accept=st.sampled_from(["application/json", "application/x-ndjson", "*/*", "text/html"]),
)
def test_junk_query_parameters_never_break_a_read(
    live: LiveServer,
    client: httpx.Client,
    http_backend: str,
    events_params: dict[str, str],
    list_params: dict[str, str],
    tracker_params: dict[str, str],
    accept: str,
) -> None:
    sid = "reader"
    if stored(live.store, sid) == []:
        live.store.append(sid, [{"event": "user", "text": "hi"}, {"event": "pause"}])
    before = live.store.read(sid)
    for path, params in (
        ("/events", events_params),
        ("/conversations", list_params),
        (tracker_path(sid, "/tracker"), tracker_params),
    ):
        response = client.get(path, params=params, headers={"Accept": accept})
        assert_sane(response)
        if response.status_code != 200:
            assert response.status_code == 400, response.text
    assert live.store.read(sid) == before
    assert_alive(client)


# -- pinned hostile requests ----------------------------------------------------------------
BIG = str(2**64)
#: (name, path, query parameters) of reads the properties above leave to this table.
PINNED_READS: list[tuple[str, str, dict[str, str]]] = [
    ("events-after-2^31", "/events", {"after": str(2**31)}),
    ("events-after-2^64", "/events", {"after": BIG}),
    ("events-limit-2^64", "/events", {"limit": BIG}),
    ("events-limit-2^64-jsonl", "/events", {"limit": BIG, "format": "jsonl"}),
    ("events-cursor-2^64", "/events", {"cursor": cursor_of({"p": 2**64})}),
    ("events-cursor-offset-2^64", "/events", {"cursor": cursor_of({"o": 2**64})}),
    ("events-cursor-true", "/events", {"cursor": cursor_of({"p": True})}),
    ("events-cursor-offset-true", "/events", {"cursor": cursor_of({"o": True})}),
    ("events-sender-nul", "/events", {"sender_id": "a\x00b"}),
    ("events-type-nul", "/events", {"type_name": "\x00"}),
    ("events-intent-nul", "/events", {"intent": "\x00"}),
    ("events-action-nul", "/events", {"action": "\x00"}),
    ("events-sender-empty", "/events", {"sender_id": ""}),
    ("events-sender-too-long", "/events", {"sender_id": "x" * 5000}),
    ("events-intent-too-long", "/events", {"intent": "x" * 5000}),
    ("events-since-nan", "/events", {"since": "nan"}),
    ("events-since-inf", "/events", {"since": "inf", "until": "-inf"}),
    ("events-until-1e308", "/events", {"until": "1e308"}),
    ("conversations-cursor-nul", "/conversations", {"cursor": cursor_of({"k": "\x00"})}),
    ("conversations-limit-2^64", "/conversations", {"limit": BIG}),
    ("tracker-until-nan", "/conversations/reader/tracker", {"until": "nan"}),
    ("path-not-utf8", "/conversations/%FF%FE/tracker", {}),
    ("path-encoded-surrogate", "/conversations/%ED%A0%80/tracker", {}),
    ("path-overlong-slash", "/conversations/%C0%AF/tracker", {}),
    ("tracker-until-inf", "/conversations/reader/tracker", {"until": "-inf"}),
]
#: (name, raw body) of writes the properties leave to this table.
PINNED_WRITES: list[tuple[str, bytes]] = [
    # valid JSON (an escaped lone surrogate), but not encodable as UTF-8
    ("lone-surrogate-text", b'{"event": "user", "text": "\\ud800"}'),
    ("lone-surrogate-key", b'{"event": "user", "text": "x", "metadata": {"\\udfff": 1}}'),
    ("nul-in-text", b'{"event": "user", "text": "a\\u0000b"}'),
    ("nul-in-slot-value", b'{"event": "slot", "name": "s", "value": "\\u0000"}'),
    ("nul-in-key", b'{"event": "user", "text": "x", "metadata": {"\\u0000": 1}}'),
    (
        "mongo-operator-keys",
        b'{"event": "user", "text": "x", "metadata": {"$where": "1", "a.b": 2}}',
    ),
    ("int-over-2^63", b'{"event": "slot", "name": "s", "value": 18446744073709551616}'),
    ("float-tiny", b'{"event": "slot", "name": "s", "value": 5e-324}'),
    ("empty-key", b'{"event": "user", "text": "x", "metadata": {"": 1}}'),
]


@pytest.mark.parametrize(("name", "path", "params"), PINNED_READS, ids=[c[0] for c in PINNED_READS])
def test_pinned_hostile_reads(
    live: LiveServer,
    client: httpx.Client,
    http_backend: str,
    request: pytest.FixtureRequest,
    name: str,
    path: str,
    params: dict[str, str],
) -> None:
    if stored(live.store, "reader") == []:
        live.store.append("reader", [{"event": "user", "text": "hi"}, {"event": "pause"}])
    response = client.get(path, params=params)
    assert_sane(response)
    assert response.status_code in (200, 400), response.text
    assert_alive(client)


#: Every pinned write: the big and deep bodies, then the hostile little ones.
WRITE_CASES = BIG_CASES + [
    (name, (lambda raw=raw: raw), False, False) for name, raw in PINNED_WRITES
]


@pytest.mark.parametrize(
    ("name", "make", "chunked", "must_refuse"), WRITE_CASES, ids=[c[0] for c in WRITE_CASES]
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_pinned_hostile_writes(
    live: LiveServer,
    client: httpx.Client,
    http_backend: str,
    request: pytest.FixtureRequest,
    method: str,
    name: str,
    make: Callable[[], bytes],
    chunked: bool,
    must_refuse: bool,
) -> None:
    raw = make()
    sid = f"pinned-{name}-{method}"
    request.addfinalizer(lambda: live.store.delete(sid))  # a poisoned log breaks GET /events
    content: Any = chunks(raw) if chunked else raw
    headers = {"Content-Type": "application/json"}
    # (json.loads of a body nested past the recursion limit would upset this very process)
    sent = NOT_JSON if must_refuse else parse_like_python(raw)
    response = check_write(live, client, method, sid, sent, content=content, headers=headers)
    if must_refuse:
        assert response.status_code in (400, 413), response.text
    if len(raw) > BODY_LIMIT:
        assert response.status_code == 413
        assert response.json()["reason"] == "PayloadTooLarge"
    assert_alive(client)
    # the conversation is still readable whatever happened
    assert client.get(tracker_path(sid, "/tracker")).status_code == 200

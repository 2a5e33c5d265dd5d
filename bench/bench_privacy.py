"""Privacy costs: redaction per event, and SQLite appends/reads with encryption at rest.

Baselines in the same process: a deep copy of the event (what redaction must do anyway)
and the same SQLite store without ``encryption_keys_env``. Run:
``.venv/bin/python -m bench.bench_privacy``.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from eventstore.privacy import Redactor
from eventstore.privacy.config import RedactionRule
from eventstore.privacy.crypto import generate_key
from eventstore.stores.sql.store import SQLTrackerStore

TEXT = "I am jane.doe@example.org, call +49 30 1234567, card 4111 1111 1111 1111"
EVENT: dict[str, Any] = {
    "event": "user",
    "timestamp": 1.0,
    "text": TEXT,
    "parse_data": {
        "text": TEXT,
        "intent": {"name": "inform", "confidence": 0.9},
        "entities": [{"entity": "email", "value": "jane.doe@example.org"}],
    },
    "metadata": {"ip": "10.1.2.3"},
}


def per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def redaction() -> None:
    rules = (
        RedactionRule(detectors=("email", "phone", "credit_card", "iban"), action="hash"),
        RedactionRule(entities=("email",), metadata_keys=("ip",), action="mask"),
    )
    redactor = Redactor(rules, b"k" * 32)
    n = 5000
    base = per_call(lambda: copy.deepcopy(EVENT), n)
    red = per_call(lambda: redactor.redact(EVENT), n)
    print(
        f"redaction of a user event: {red * 1e6:.0f} us "
        f"(deep copy {base * 1e6:.0f} us, x{red / base:.1f})"
    )


def turn(i: int) -> list[dict[str, Any]]:
    return [
        {"event": "action", "name": "action_listen", "timestamp": float(i)},
        {**EVENT, "timestamp": i + 0.1},
        {"event": "slot", "name": "email", "value": "jane.doe@example.org", "timestamp": i + 0.2},
        {"event": "action", "name": "utter_ok", "timestamp": i + 0.3},
        {"event": "bot", "text": "Thanks!", "timestamp": i + 0.4},
    ]


def sqlite(encrypted: bool, directory: str, run: int) -> tuple[float, float]:
    url = f"sqlite:///{directory}/{'enc' if encrypted else 'plain'}{run}.db"
    options = {"encryption_keys_env": "BENCH_KEYS"} if encrypted else {}
    store = SQLTrackerStore.from_url(url, **options)
    try:
        turns = 200
        start = time.perf_counter()
        for i in range(turns):
            store.append("bench", turn(i))
        append = (time.perf_counter() - start) / turns
        read = per_call(lambda: store.read_all("bench"), 20)
    finally:
        store.close()
    return append, read


def main() -> None:
    redaction()
    os.environ["BENCH_KEYS"] = f"k1:{generate_key()}"
    with tempfile.TemporaryDirectory() as directory:
        runs = [(sqlite(False, directory, r), sqlite(True, directory, r)) for r in range(3)]
    # the best of three alternating runs of each (the machine is shared)
    plain = (min(p[0] for p, _ in runs), min(p[1] for p, _ in runs))
    enc = (min(e[0] for _, e in runs), min(e[1] for _, e in runs))
    print(
        f"SQLite append of a 5-event turn: {enc[0] * 1e3:.2f} ms encrypted, "
        f"{plain[0] * 1e3:.2f} ms plain (x{enc[0] / plain[0]:.2f})"
    )
    print(
        f"SQLite read of 1,000 events: {enc[1] * 1e3:.1f} ms encrypted, "
        f"{plain[1] * 1e3:.1f} ms plain (x{enc[1] / plain[1]:.2f})"
    )


if __name__ == "__main__":
    main()

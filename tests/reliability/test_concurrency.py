"""4 processes x 4 threads saving into 50 shared conversations, on every backend.

Each worker loads the current session, adds two events and saves, retrying on conflict
(`tests/reliability/worker.py`). Afterwards every log must be seqs 1..N with no gap and
no duplicate, and hold exactly the events of the successful saves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from eventstore import EventQuery, create_tracker_store

PROCESSES = 4
THREADS = 4
ROUNDS = 12
CONVERSATIONS = 50
ROOT = Path(__file__).resolve().parents[2]


def test_processes_and_threads_lose_and_duplicate_nothing(backend: dict[str, Any]) -> None:
    tag = uuid.uuid4().hex[:8]
    store = create_tracker_store(backend)  # creates the schema/table before the race
    args = [json.dumps(backend), str(THREADS), str(ROUNDS), str(CONVERSATIONS), tag]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.worker", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    saved = sum(r["saved"] for r in results)
    assert saved == PROCESSES * THREADS * ROUNDS
    stored_events = 0
    texts: Counter[str] = Counter()
    for n in range(CONVERSATIONS):
        sid = f"{tag}-conv-{n}"
        seqs = [e.seq for e in store.query(EventQuery(sender_id=sid))]
        assert seqs == list(range(1, len(seqs) + 1)), f"{sid}: gap or duplicate in {seqs}"
        events = store.read(sid)
        assert len(events) == len(seqs)
        stored_events += len(events)
        texts.update(e["text"] for e in events if e["event"] == "user")
        # each save's two events stay together: user, then its action
        assert [e["event"] for e in events] == ["user", "action"] * (len(events) // 2)
    assert stored_events == sum(r["events"] for r in results)
    assert len(texts) == saved and set(texts.values()) == {1}  # every save exactly once
    store.close()

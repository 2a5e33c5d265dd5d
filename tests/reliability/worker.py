"""A bot-runtime process for the concurrency tests: threads that load, add events, save.

Run as ``python -m tests.reliability.worker CONFIG_JSON THREADS ROUNDS CONVERSATIONS TAG``.
Each thread picks conversations in turn, loads the current session, adds two events and
saves, retrying on ``ConcurrencyError``. It prints one JSON line: successful saves and the
number of events they stored, so the test can compare with what the store holds.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading

from eventstore import ConcurrencyError, Tracker, create_tracker_store


def main() -> None:
    config = json.loads(sys.argv[1])
    threads, rounds, conversations = (int(a) for a in sys.argv[2:5])
    tag = sys.argv[5]
    store = create_tracker_store(config)
    saved = 0
    events = 0
    conflicts = 0
    lock = threading.Lock()

    def run(n: int) -> None:
        nonlocal saved, events, conflicts
        rng = random.Random(f"{tag}-{n}")
        for r in range(rounds):
            sid = f"{tag}-conv-{rng.randrange(conversations)}"
            while True:
                tracker = store.retrieve(sid)
                if tracker is None:
                    tracker = Tracker(sid)
                text = f"{tag}-{os.getpid()}-{n}-{r}"
                tracker.update({"event": "user", "text": text, "parse_data": {}})
                tracker.update({"event": "action", "name": "action_listen"})
                try:
                    store.save(tracker)
                except ConcurrencyError:
                    with lock:
                        conflicts += 1
                    continue
                with lock:
                    saved += 1
                    events += 2
                break

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    store.close()
    print(json.dumps({"saved": saved, "events": events, "conflicts": conflicts}))


if __name__ == "__main__":
    main()

"""Rasa 3.6's own RedisTrackerStore saves turns before and during a migration.

Runs in the Rasa venv: ``python redis_writer.py CONFIG_JSON`` with ``host``, ``port``,
``db``, ``key_prefix``, ``senders``, ``before`` and ``during`` (turns per sender). Writes
``before`` turns, prints ``ready``, waits for a line on stdin, writes ``during`` more
turns, then prints one JSON line: sender -> every event ``retrieve_full_tracker`` returns.
"""

import asyncio
import json
import sys

from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker


async def turns(store: RedisTrackerStore, senders: list, first: int, count: int) -> None:
    for i in range(first, first + count):
        for sender in senders:
            tracker = await store.retrieve(sender) or DialogueStateTracker(sender, None)
            tracker.update(SlotSet(f"turn-{i}", i))
            await store.save(tracker)


async def main(config: dict) -> None:
    store = RedisTrackerStore(
        Domain.empty(),
        host=config["host"],
        port=config["port"],
        db=config["db"],
        key_prefix=config["key_prefix"],
    )
    senders = config["senders"]
    await turns(store, senders, 0, config["before"])
    print("ready", flush=True)
    sys.stdin.readline()
    await turns(store, senders, config["before"], config["during"])
    result = {}
    for sender in senders:
        full = await store.retrieve_full_tracker(sender)
        result[sender] = [event.as_dict() for event in full.events] if full else []
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))

"""Rasa 3.6's own SQLTrackerStore saves turns, then reads conversations back.

Runs in the Rasa venv: ``python sql_writer.py CONFIG_JSON`` with the store's arguments
(``dialect``, ``host``, ``port``, ``db``, ``username``), ``writes``: a list of
``[sender, turns, prefix]`` and ``read``: senders to read back. Each turn is Rasa's
read-modify-save: ``retrieve``, one new ``slot`` event named prefix + i, ``save``. After
the writes it prints ``written`` and, if ``wait`` is set, waits for a line on stdin; then
it prints one JSON line: sender -> every event ``retrieve_full_tracker`` returns.
"""

import asyncio
import json
import sys

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker


async def main(config: dict) -> None:
    store = SQLTrackerStore(
        dialect=config["dialect"],
        host=config.get("host"),
        port=config.get("port"),
        db=config["db"],
        username=config.get("username"),
    )
    for sender, turns, prefix in config.get("writes", []):
        for i in range(turns):
            tracker = await store.retrieve(sender) or DialogueStateTracker(sender, None)
            tracker.update(SlotSet(f"{prefix}{i}", i))
            await store.save(tracker)
    print("written", flush=True)
    if config.get("wait"):
        sys.stdin.readline()
    result = {}
    for sender in config.get("read", []):
        full = await store.retrieve_full_tracker(sender)
        result[sender] = [event.as_dict() for event in full.events] if full else []
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))

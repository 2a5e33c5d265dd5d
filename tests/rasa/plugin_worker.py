"""Runs inside the Rasa venv: drives ``eventstore_rasa`` with Rasa's own classes.

One JSON command per stdin line, one JSON answer per stdout line, so a test imports Rasa
once and then calls many operations (``tests/rasa/test_plugin_store.py``). Logs go to
stderr. Not a test module: pytest never imports it (Rasa is not in the test venv).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import traceback
from typing import Any

import eventstore_rasa.store
from rasa.core.brokers.file import FileEventBroker
from rasa.core.tracker_store import TrackerStore, check_if_tracker_store_async
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

stores: dict[str, Any] = {}
trackers: dict[str, DialogueStateTracker] = {}


def events_of(tracker: DialogueStateTracker | None) -> list[dict[str, Any]] | None:
    return None if tracker is None else [e.as_dict() for e in tracker.events]


async def run(op: str, args: dict[str, Any]) -> Any:
    if op == "create":
        domain = Domain.load(args["domain"]) if args.get("domain") else None
        broker = FileEventBroker(args["broker_file"]) if args.get("broker_file") else None
        store = TrackerStore.create(
            EndpointConfig.from_dict(args["config"]), domain=domain, event_broker=broker
        )
        stores[args["name"]] = store
        return {"class": type(store).__name__, "async": check_if_tracker_store_async(store)}
    if op == "keys_page":
        eventstore_rasa.store.KEYS_PAGE = args["size"]
        return None
    store = stores.get(args.get("store", ""))
    if op == "load":  # get_or_create_tracker, as Rasa's processor does every turn
        tracker = await store.get_or_create_tracker(args["sender"], append_action_listen=False)
        trackers[args["key"]] = tracker
        return len(tracker.events)
    if op == "add":
        tracker = trackers[args["key"]]
        for event in args["events"]:
            tracker.update(Event.from_parameters(event))
        return len(tracker.events)
    if op == "events":  # the tracker's events as Rasa serialises them
        return events_of(trackers[args["key"]])
    if op == "save":
        await store.save(trackers[args["key"]])
        return None
    if op == "put":  # what Rasa's PUT /conversations/{id}/tracker/events does
        tracker = DialogueStateTracker.from_dict(args["sender"], args["events"], store.domain.slots)
        await store.save(tracker)
        return None
    if op == "retrieve":
        return events_of(await store.retrieve(args["sender"]))
    if op == "full":
        return events_of(await store.retrieve_full_tracker(args["sender"]))
    if op == "slots":
        tracker = await store.retrieve(args["sender"])
        return tracker.current_slot_values()
    if op == "keys":
        return sorted(await store.keys())
    if op == "exists":
        return await store.exists(args["sender"])
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    loop = asyncio.new_event_loop()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            value = loop.run_until_complete(run(command["op"], command.get("args", {})))
            answer = {"ok": True, "value": value}
        except Exception as exc:
            answer = {
                "ok": False,
                "type": type(exc).__name__,
                "bases": [c.__name__ for c in type(exc).__mro__],
                "message": str(exc),
                "traceback": traceback.format_exc(),
            }
        print(json.dumps(answer, default=str), flush=True)


if __name__ == "__main__":
    main()

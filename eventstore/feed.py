"""Checkpointed subscriptions: every stored event in position order, catch-up then live.

    for batch in store.subscribe("billing"):      # resumes after its saved checkpoint
        handle(batch.events)                      # asking for the next batch acks this one

Delivery: in position order, each event once per run; across restarts *at least once*
(a batch whose handling was cut short comes again), *exactly once* when the work is
written in ``batch.transaction()`` on the SQL store's own database, which commits the
checkpoint with it. Positions are gap-free on every store that has them (docs/feed.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventstore.errors import ConfigError, EventStoreError, NoPositionsError
from eventstore.stores.records import EventQuery, StoredEvent

if TYPE_CHECKING:
    from eventstore.stores.base import TrackerStore

#: Events per batch unless the subscriber asks otherwise.
DEFAULT_BATCH = 500
#: Seconds between polls once the subscriber has caught up.
DEFAULT_POLL = 0.5
_MAX_NAME = 255


@dataclass
class Batch:
    """Consecutive events of the feed; ``position`` is the last one's."""

    events: list[StoredEvent]
    position: int
    subscription: Subscription = field(repr=False)
    acked: bool = False

    def ack(self) -> None:
        """Save the checkpoint at this batch's end (done for you when you ask for the next)."""
        if not self.acked:
            self.subscription.save(self.position)
            self.acked = True

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A SQL connection whose transaction commits your writes with the checkpoint.

        Only for a named subscription on the SQL store: what you write with the connection
        and the new checkpoint commit together or not at all (exactly once).
        """
        sub = self.subscription
        opener = getattr(sub.store, "checkpoint_transaction", None)
        if opener is None or sub.name is None:
            raise ConfigError(
                "batch.transaction() needs a named subscription on the SQL store; "
                f"{type(sub.store).__name__} keeps its checkpoints apart from your data: "
                "use batch.ack() (at least once) or keep your own checkpoint with your data"
            )
        with opener(sub.name, self.position) as conn:
            yield conn
        sub.position = self.position
        self.acked = True


class Subscription:
    """Iterate for batches; ``stop()`` (from any thread) ends a following subscription."""

    def __init__(
        self,
        store: TrackerStore,
        name: str | None = None,
        after: int | None = None,
        *,
        batch_size: int = DEFAULT_BATCH,
        follow: bool = True,
        poll_interval: float = DEFAULT_POLL,
    ) -> None:
        if not store.has_positions:
            raise NoPositionsError(type(store).__name__)
        if name is not None and not 0 < len(name) <= _MAX_NAME:
            raise ConfigError(f"a subscription name has 1 to {_MAX_NAME} characters")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if after is not None and after < 0:
            raise ConfigError(f"after must be a position >= 0, got {after}")
        self.store = store
        self.name = name
        self.batch_size = batch_size
        self.follow = follow
        self.poll_interval = poll_interval
        self._stopped = threading.Event()
        saved = store.load_checkpoint(name) if name is not None and after is None else None
        #: The last position delivered and acknowledged (0: from the beginning).
        self.position: int = after if after is not None else (saved or 0)

    def save(self, position: int) -> None:
        """Record that everything up to ``position`` is processed."""
        if self.name is not None:
            self.store.save_checkpoint(self.name, position)
        self.position = position

    def stop(self) -> None:
        """End the iteration after the current batch (or wake it from waiting)."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def poll(self) -> list[StoredEvent]:
        """The next events after the current position (at most ``batch_size``), maybe none."""
        query = EventQuery(after_position=self.position, limit=self.batch_size)
        return list(self.store.query(query))

    def __iter__(self) -> Iterator[Batch]:
        while True:
            if self._stopped.is_set():
                return
            events = self.poll()
            if not events:
                if not self.follow:
                    return
                self._stopped.wait(self.poll_interval)
                continue
            last = events[-1].position
            if last is None or last <= self.position:
                raise EventStoreError(
                    f"{type(self.store).__name__} returned position {last} after "
                    f"{self.position}: positions must grow"
                )
            batch = Batch(events, last, self)
            yield batch
            # the caller came back for more: it is done with this batch (a caller that
            # breaks off never gets here, and the batch comes again next time)
            batch.ack()

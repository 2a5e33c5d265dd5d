"""Retention: conversations idle for ``retention.days`` are deleted (or redacted).

A run takes the store's ``retention`` lock (in the store's own server, so replicas never
run it twice at once), then goes through the conversations in batches; each deletion is
its own short write, checked against the version it saw (``delete_at_version``), so a
conversation written to meanwhile survives and appends are never blocked. Deleted
conversations get a tombstone and an audit line like ``forget``. A run stops early when
its lock is about to expire; the next run carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventstore.errors import ConcurrencyError, ConfigError
from eventstore.privacy.config import RetentionSettings
from eventstore.privacy.erasure import AuditTrail, Erasure, erase_copies, publish_tombstones

if TYPE_CHECKING:
    from eventstore.endpoints import Endpoints
    from eventstore.privacy.redaction import Redactor
    from eventstore.stores.base import TrackerStore

logger = logging.getLogger(__name__)
LOCK_NAME = "retention"
DAY = 86_400.0


@dataclass
class RetentionReport:
    """What one run did (or, with ``dry_run``, would do)."""

    ran: bool = True  # False: another process held the lock
    examined: int = 0
    expired: list[str] = field(default_factory=list)
    deleted_events: int = 0
    skipped: int = 0  # written to while the run looked at them
    finished: bool = True  # False: stopped before its lock expired; the next run goes on
    erasures: list[Erasure] = field(default_factory=list)


def last_event_time(store: TrackerStore, sender_id: str) -> tuple[int, float | None]:
    """The conversation's version and the timestamp of its last event (None: empty)."""
    version = store.version(sender_id)
    if version == 0:
        return 0, None
    tail = store.read(sender_id, version - 1)
    if not tail:
        return version, None
    stamp = tail[-1].get("timestamp")
    return version, float(stamp) if isinstance(stamp, int | float) else None


def apply_retention(
    store: TrackerStore,
    settings: RetentionSettings,
    *,
    dry_run: bool = False,
    redactor: Redactor | None = None,
    audit: AuditTrail | None = None,
    now: float | None = None,
    confirm_timeout: float = 30.0,
) -> RetentionReport:
    """One retention run over ``store`` (see the module docstring)."""
    if settings.action == "redact" and redactor is None:
        raise ConfigError("retention: action 'redact' needs privacy.redaction rules")
    cutoff = (time.time() if now is None else now) - settings.days * DAY
    trail = audit if audit is not None else AuditTrail()
    with store.exclusive(LOCK_NAME, settings.lock_seconds) as taken:
        if not taken:
            logger.info("retention: another process holds the lock; skipped")
            return RetentionReport(ran=False)
        stop_at = time.monotonic() + 0.8 * settings.lock_seconds
        report = RetentionReport()
        ids = list(store.keys())  # listed first: no cursor stays open while deleting
        for start in range(0, len(ids), settings.batch_size):
            if time.monotonic() > stop_at:
                report.finished = False
                break
            batch = ids[start : start + settings.batch_size]
            _batch(store, batch, cutoff, settings, report, dry_run, redactor, trail)
        publish_tombstones(store, report.erasures, confirm_timeout)
    logger.info(
        "retention: %d conversations examined, %d past %g days%s",
        report.examined,
        len(report.expired),
        settings.days,
        " (dry run)" if dry_run else "",
    )
    return report


def _batch(
    store: TrackerStore,
    ids: list[str],
    cutoff: float,
    settings: RetentionSettings,
    report: RetentionReport,
    dry_run: bool,
    redactor: Redactor | None,
    audit: AuditTrail,
) -> None:
    for sender_id in ids:
        report.examined += 1
        version, last = last_event_time(store, sender_id)
        if version == 0 or last is None or last >= cutoff:
            continue
        if dry_run:
            report.expired.append(sender_id)
            continue
        try:
            if settings.action == "delete":
                removed = store.delete_at_version(sender_id, version)
                erase_copies(store, sender_id)
                report.deleted_events += removed
                erasure = Erasure(sender_id, removed, "retention", "retention", time.time())
                audit.record(erasure)
                report.erasures.append(erasure)
            else:
                assert redactor is not None
                events = store.read(sender_id, 0)
                redacted = [redactor.redact(event) for event in events]
                if redacted != events:
                    store.replace(sender_id, redacted, expected_version=version)
                    erase_copies(store, sender_id)  # projected again from the new log
        except ConcurrencyError:
            report.skipped += 1  # the conversation came back to life meanwhile
            continue
        report.expired.append(sender_id)


class RetentionScheduler:
    """Runs retention every ``interval_minutes`` in a daemon thread (``eventstore run``)."""

    def __init__(
        self,
        store: TrackerStore,
        settings: RetentionSettings,
        redactor: Redactor | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.redactor = redactor
        self.audit = audit
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RetentionScheduler:
        self._thread = threading.Thread(target=self._loop, name="eventstore-retention", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        interval = self.settings.interval_minutes * 60
        while not self._stop.is_set():
            try:
                apply_retention(self.store, self.settings, redactor=self.redactor, audit=self.audit)
            except Exception:
                logger.exception("retention run failed; the next one retries")
            self.runs += 1
            if self._stop.wait(interval):
                return

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def retention_from_endpoints(
    endpoints: Endpoints,
) -> tuple[RetentionSettings | None, Redactor | None, AuditTrail]:
    """The ``retention:`` settings of endpoints.yml, the redactor and the audit trail."""
    from eventstore.privacy.config import parse_privacy, parse_retention
    from eventstore.privacy.redaction import Redactor

    settings = parse_retention(endpoints.retention)
    privacy = parse_privacy(endpoints.privacy)
    redaction = privacy.redaction if privacy is not None else None
    redactor = Redactor.from_settings(redaction) if redaction is not None else None
    if settings is not None and settings.action == "redact" and redactor is None:
        raise ConfigError("retention: action 'redact' needs privacy.redaction rules")
    audit = AuditTrail(privacy.audit_file if privacy is not None else None)
    return settings, redactor, audit


def schedule_retention(store: TrackerStore, endpoints_path: str) -> RetentionScheduler | None:
    """Start the scheduled retention of endpoints.yml (None without one, or interval 0)."""
    from eventstore.endpoints import load_endpoints

    settings, redactor, audit = retention_from_endpoints(load_endpoints(endpoints_path))
    if settings is None or settings.interval_minutes == 0:
        return None
    return RetentionScheduler(store, settings, redactor, audit).start()

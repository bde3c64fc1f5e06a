"""The orchestrator's audit entries (a trigger changed, a run started or cancelled, a
watermark reset). The audit log is the catalog's, in the catalog's database, so an entry is
kept in the orchestrator's outbox in the same transaction as the change it tells of, then
sent to the catalog (:data:`~flowforge_shared.contracts.audit.RECORD_AUDIT`) and removed:

- at once when that transaction commits (:func:`install` registers the sender of each
  database);
- else by the next sweep (:class:`AuditSweep`, every few seconds in the API and the
  scheduler), which sends what a crash, or a catalog that did not answer, left behind.

An entry may be sent twice (a sweep and a commit at once, a crash after sending); the
catalog records it once, by its id."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from flowforge_orchestrator.audit.models import AuditOutboxEntry
from flowforge_orchestrator.periodic import PeriodicPass
from flowforge_shared.audit import entry_fields
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.audit import RECORD_AUDIT, AuditRecorded
from flowforge_shared.contracts.tasks import CATALOG_QUEUE
from flowforge_shared.db.base import new_id, utcnow
from flowforge_shared.db.engine import Database

log = logging.getLogger("flowforge.orchestrator")
KEY = "flowforge.audit_outbox"
BATCH = 500
# An entry this old is the sweep's: its own commit's hand-over had its chance.
SWEEP_AFTER = timedelta(seconds=5)
_senders: dict[Engine, AuditSender] = {}
_deferred = threading.local()


def record(session: Session, **change: Any) -> None:
    """Keep one entry in the session's unit of work (the caller commits); ``change`` is
    :func:`flowforge_shared.audit.entry_fields`'s keywords."""
    entry = AuditOutboxEntry(id=new_id(), **entry_fields(**change))
    session.add(entry)
    session.info.setdefault(KEY, []).append(entry.id)


class AuditSender:
    """Sends one database's outbox entries to the catalog and removes what it sent."""

    def __init__(self, database: Database, bus: Bus) -> None:
        self.database, self.bus = database, bus

    def send(self, ids: list[str] | None = None) -> int:
        """The entries named (or every entry older than :data:`SWEEP_AFTER`); how many
        were sent. Read, sent and removed in separate transactions: a handler in this
        process writes the catalog's database meanwhile (SQLite: one writer at a time)."""
        query = select(AuditOutboxEntry).order_by(AuditOutboxEntry.at).limit(BATCH)
        if ids is not None:
            query = query.where(AuditOutboxEntry.id.in_(ids))
        else:
            query = query.where(AuditOutboxEntry.at < utcnow() - SWEEP_AFTER)
        with self.database.session() as session:
            entries = list(session.scalars(query))
        sent = []
        for entry in entries:
            try:
                self.bus.send(RECORD_AUDIT, _message(entry), queue=CATALOG_QUEUE)
            except Exception:  # noqa: BLE001 - kept for the next sweep
                log.warning("audit entry %s not sent yet; the next sweep tries again", entry.id)
                break
            sent.append(entry.id)
        if sent:
            with self.database.session() as session:
                session.execute(delete(AuditOutboxEntry).where(AuditOutboxEntry.id.in_(sent)))
        return len(sent)


class AuditSweep(PeriodicPass):
    thread_name = "flowforge-audit-sweep"
    log = log

    def __init__(self, sender: AuditSender, interval: float = 2.0) -> None:
        super().__init__()
        self.sender, self._interval = sender, interval

    @property
    def interval(self) -> float:
        return self._interval

    def run_pass(self) -> int:
        return self.sender.send()


def install(database: Database, bus: Bus) -> AuditSender:
    """Send the entries committed to ``database`` as soon as they are committed."""
    sender = AuditSender(database, bus)
    _senders[database.engine] = sender
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
    return sender


def install_audit(app) -> None:
    """In a serving orchestrator: the hand-over at commit, and the sweep."""
    sender = install(app.state.database, app.state.bus)
    sweep = AuditSweep(sender)
    app.state.starters.append(sweep.start)
    return sweep.stop


def _message(entry: AuditOutboxEntry) -> dict:
    return AuditRecorded(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        diff=entry.diff,
    ).to_wire()


@contextmanager
def hand_over_after() -> Iterator[None]:
    """Entries committed in this thread during the block are handed to the catalog when the
    block ends, not at their commit: around a block that holds a lock (the run records'
    ``record_lock``), so the hand-over's three transactions (read, the catalog's record,
    delete) are not made under it, nor with the committed session's connection still held.
    The entries are in the outbox from their commit on, as before; the sweep still sends
    what a crash leaves behind."""
    if getattr(_deferred, "pending", None) is not None:  # nested: the outer block sends
        yield
        return
    _deferred.pending = pending = []
    try:
        yield
    finally:
        _deferred.pending = None
        for sender, ids in pending:
            _send(sender, ids)


def _after_commit(session: Session) -> None:
    ids = session.info.pop(KEY, None)
    sender = _senders.get(session.get_bind()) if ids else None
    if sender is not None:
        pending = getattr(_deferred, "pending", None)
        if pending is not None:
            pending.append((sender, ids))
        else:
            _send(sender, ids)


def _send(sender: AuditSender, ids: list[str]) -> None:
    try:
        sender.send(ids)
    except Exception:  # noqa: BLE001 - the change stands; the sweep sends the entry
        log.exception("audit entries not handed to the catalog yet")


def _after_rollback(session: Session) -> None:
    session.info.pop(KEY, None)

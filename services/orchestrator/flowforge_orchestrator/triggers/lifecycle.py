"""What the orchestrator's triggers tell the catalog, and what they learn from it
(:mod:`flowforge_shared.contracts.workflow_events`).

- :func:`note_schedule` / :func:`publish`: after a change of a workflow's time triggers, the
  catalog is told whether the workflow still has an enabled one (``WORKFLOW_SCHEDULE``), so
  it shows ``status: "scheduled"`` without reading this service's tables. The message's
  ``sequence`` is taken in the change's transaction from ``workflow_schedules`` (an upsert
  that increments it, holding the row's lock until commit), and whether the workflow is
  scheduled is counted after that lock is held: two changes of one workflow's triggers are
  numbered in the order they commit, and the later number always carries the later state.
  Sent after the commit; the catalog applies only a sequence above the last it applied.
- :func:`on_workflow_deleted`: the catalog deleted a workflow (``WORKFLOW_DELETED``); the
  dependency triggers that wait for it are disabled, saying why (``disabledReason``,
  audited), and so are the deleted workflow's own triggers. Disabled rather than edited: an
  ``all`` trigger without one of its upstreams would fire on less than it was set up for;
  the person who owns it decides (enabling it again while it names the deleted workflow is
  a 422). :func:`check_upstreams` (each scheduler, every minute) does the same for a deletion
  whose message was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Boolean, String, func, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from flowforge_orchestrator.audit import service as audit
from flowforge_orchestrator.triggers.models import Trigger
from flowforge_orchestrator.triggers.schemas import TIME_KINDS, TriggerKind
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.tasks import CATALOG_QUEUE
from flowforge_shared.contracts.workflow_events import (
    WORKFLOW_DELETED,
    WORKFLOW_SCHEDULE,
    WorkflowDeleted,
    WorkflowSchedule,
)
from flowforge_shared.db.base import Base, UTCDateTime, utcnow
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import NotFound

log = logging.getLogger("flowforge.triggers")
TIME_KIND_VALUES = [kind.value for kind in TIME_KINDS]


class WorkflowScheduleState(Base):
    """Per workflow: the sequence of the last ``WORKFLOW_SCHEDULE`` message, and what it said."""

    __tablename__ = "workflow_schedules"

    workflow_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    scheduled: Mapped[bool] = mapped_column(Boolean)
    # The last sequence the bus took: a lower value than ``sequence`` is sent again.
    sent_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


def note_schedule(session: Session, trigger: Trigger) -> WorkflowSchedule | None:
    """In the transaction that changed (created, deleted) ``trigger``, after its flush: the
    message telling the catalog whether its workflow has an enabled time trigger now. None
    for a trigger of another kind (the schedule did not change)."""
    if trigger.kind not in TIME_KIND_VALUES:
        return None
    return _schedule(session, trigger.workflow_id)


def _schedule(session: Session, workflow_id: str) -> WorkflowSchedule:
    session.flush()
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = WorkflowScheduleState.__table__
    session.execute(
        insert(table)
        .values(
            workflow_id=workflow_id, sequence=1, scheduled=False, sent_sequence=0, updated_at=now
        )
        .on_conflict_do_update(
            index_elements=[table.c.workflow_id],
            set_={"sequence": table.c.sequence + 1, "updated_at": now},
        )
    )
    # Counted once the row's lock is held: a concurrent change of another of the workflow's
    # triggers has committed (READ COMMITTED reads it) or waits for this one.
    count = session.scalar(
        select(func.count())
        .select_from(Trigger)
        .where(
            Trigger.workflow_id == workflow_id,
            Trigger.enabled.is_(True),
            Trigger.kind.in_(TIME_KIND_VALUES),
        )
    )
    session.execute(
        sql_update(table).where(table.c.workflow_id == workflow_id).values(scheduled=count > 0)
    )
    sequence = session.scalar(select(table.c.sequence).where(table.c.workflow_id == workflow_id))
    return WorkflowSchedule(
        workflowId=workflow_id,
        sequence=sequence,
        scheduled=count > 0,
        timeTriggers=count,
        changedAt=now,
    )


def publish(bus: Bus, message: WorkflowSchedule | None, session: Session) -> bool:
    """Tell the catalog, after the commit, and record that the bus took the message (in a
    transaction of its own on ``session``). A failure is logged: the trigger change stands,
    and the scheduler sends the state again (:func:`resend`)."""
    if message is None:
        return False
    try:
        bus.send(WORKFLOW_SCHEDULE, message.to_wire(), queue=CATALOG_QUEUE)
    except Exception:  # noqa: BLE001 - the trigger change is committed
        log.exception("the catalog was not told workflow %s's schedule", message.workflow_id)
        return False
    table = WorkflowScheduleState.__table__
    try:
        session.execute(
            sql_update(table)
            .where(
                table.c.workflow_id == message.workflow_id,
                table.c.sent_sequence < message.sequence,
            )
            .values(sent_sequence=message.sequence)
        )
        session.commit()
    except Exception:  # noqa: BLE001 - sent; not recorded as sent: the scheduler sends again
        session.rollback()
        log.warning("workflow %s's schedule sent, not recorded as sent", message.workflow_id)
    return True


RESEND_AFTER = timedelta(seconds=10)  # a change's own send comes right after its commit


def resend(database: Database, bus: Bus, *, now: datetime, limit: int = 100) -> int:
    """Send the catalog the schedule of each workflow it may not know: a message the bus did
    not take (the process died between the commit and the send, the catalog's handler
    failed), and workflows whose cron triggers were saved before ``workflow_schedules``
    existed. Each is numbered anew (the state now, a higher sequence). Called by every
    scheduler pass; returns how many were sent."""
    table = WorkflowScheduleState.__table__
    with database.session() as session:
        unsent = session.scalars(
            select(table.c.workflow_id)
            .where(
                table.c.sent_sequence < table.c.sequence,
                table.c.updated_at < now - RESEND_AFTER,
            )
            .limit(limit)
        ).all()
        unknown = session.scalars(
            select(Trigger.workflow_id)
            .where(
                Trigger.kind.in_(TIME_KIND_VALUES),
                Trigger.workflow_id.not_in(select(table.c.workflow_id)),
            )
            .distinct()
            .limit(limit)
        ).all()
    sent = 0
    for workflow_id in dict.fromkeys([*unsent, *unknown]):
        session = database.sessionmaker()
        try:
            message = _schedule(session, workflow_id)
            session.commit()
            sent += publish(bus, message, session)
        finally:
            session.close()
    return sent


def _disable(session: Session, trigger: Trigger, reason: str, actor: str) -> None:
    from flowforge_orchestrator.triggers.service import bump, snapshot

    before = snapshot(trigger)
    trigger.enabled = False
    trigger.next_fire_at = None
    trigger.disabled_reason = reason
    bump(trigger)
    audit.record(
        session,
        actor=actor,
        action="trigger.update",
        entity_type="trigger",
        entity_id=trigger.id,
        before=before,
        after={**snapshot(trigger), "why": reason},
    )


def disable_for_deleted_workflow(session: Session, message: WorkflowDeleted) -> list[str]:
    """Disable the enabled triggers a deleted workflow leaves without purpose; returns their
    ids (the caller commits). A trigger already disabled is left as it is, so a repeated
    message changes nothing."""
    deleted = message.workflow_id
    return _disable_for(
        session,
        deleted,
        own=f"its workflow {message.name} ({deleted}) was deleted",
        upstream=(
            f"upstream workflow {message.name} ({deleted}) was deleted by {message.actor} "
            f"at {message.deleted_at.isoformat()}: remove it from upstream (or delete this "
            "trigger), then enable it again"
        ),
        actor=message.actor,
    )


def _disable_for(session: Session, deleted: str, *, own: str, upstream: str, actor: str):
    statement = select(Trigger).where(
        Trigger.enabled.is_(True),
        (Trigger.workflow_id == deleted) | (Trigger.kind == TriggerKind.DEPENDENCY.value),
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    disabled = []
    for trigger in session.scalars(statement.order_by(Trigger.id)):
        if trigger.workflow_id == deleted:
            reason = own
        elif deleted in (trigger.settings or {}).get("upstream", []):
            reason = upstream
        else:
            continue
        _disable(session, trigger, reason, actor)
        disabled.append(trigger.id)
    session.flush()
    return disabled


UPSTREAM_CHECK_EVERY = timedelta(seconds=60)
UPSTREAM_CHECKS_PER_PASS = 20  # questions to the catalog per scheduler pass, at most


def upstream_ids(database: Database) -> list[str]:
    """The upstream workflows of the enabled dependency triggers."""
    with database.session() as session:
        return sorted(
            {
                workflow_id
                for settings in session.scalars(
                    select(Trigger.settings).where(
                        Trigger.kind == TriggerKind.DEPENDENCY.value, Trigger.enabled.is_(True)
                    )
                )
                for workflow_id in (settings or {}).get("upstream", [])
            }
        )


def check_upstreams(database: Database, info: Callable[[str], Any], ids: list[str]) -> int:
    """What a lost ``WORKFLOW_DELETED`` did not do (the catalog's process died between its
    commit and the send; a dependency trigger saved while its upstream was being deleted):
    ask the catalog about upstream workflows (``WORKFLOW_INFO``) and disable the triggers
    waiting for one it does not have. Only a clear "not found" counts; a catalog that does
    not answer changes nothing. The scheduler asks about every upstream once per
    :data:`UPSTREAM_CHECK_EVERY`, :data:`UPSTREAM_CHECKS_PER_PASS` per pass (a pass's
    firings never wait for many questions); returns how many triggers were disabled."""
    gone = []
    for workflow_id in ids:
        try:
            info(workflow_id)
        except NotFound:
            gone.append(workflow_id)
        except Exception:  # noqa: BLE001 - unknown is not gone; the next round asks again
            log.debug("upstream workflow %s: the catalog did not answer", workflow_id)
    disabled = 0
    for workflow_id in gone:
        with database.session() as session:
            found = _disable_for(
                session,
                workflow_id,
                own=f"its workflow {workflow_id} no longer exists",
                upstream=(
                    f"upstream workflow {workflow_id} no longer exists (found by the "
                    "scheduler): remove it from upstream (or delete this trigger), then "
                    "enable it again"
                ),
                actor="scheduler",
            )
        disabled += len(found)
    return disabled


def on_workflow_deleted(database: Database, payload: dict[str, Any]) -> list[str]:
    """The handler of ``WORKFLOW_DELETED`` (this process, or ``flowforge worker events``)."""
    message = WorkflowDeleted.model_validate(payload)
    with database.session() as session:
        disabled = disable_for_deleted_workflow(session, message)
    if disabled:
        log.info(
            "workflow %s deleted: triggers %s disabled", message.workflow_id, ", ".join(disabled)
        )
    return disabled


def install_workflow_deletions(app) -> None:
    """Take the catalog's ``WORKFLOW_DELETED`` in this process."""
    database = app.state.database
    app.state.bus.handle(WORKFLOW_DELETED, lambda payload: on_workflow_deleted(database, payload))

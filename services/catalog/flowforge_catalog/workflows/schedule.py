"""The catalog's side of :mod:`flowforge_shared.contracts.workflow_events`.

- :func:`apply_schedule`: the orchestrator says whether a workflow has an enabled time
  trigger (``WORKFLOW_SCHEDULE``); an active workflow with one reads ``status:
  "scheduled"``. One conditional UPDATE (``... WHERE schedule_sequence < sequence``): a
  repeated or late message (a lower sequence) changes nothing, whatever order they arrive
  in. In one process the bus calls it directly; otherwise ``flowforge worker catalog`` takes
  it from the ``catalog`` queue, as it takes the run events for assets.
- :func:`announce_deletion`: after a workflow's deletion is committed, the orchestrator is
  told (``WORKFLOW_DELETED``) so that the triggers waiting for it stop waiting.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update

from flowforge_catalog.workflows.models import Workflow
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.tasks import EVENTS_QUEUE
from flowforge_shared.contracts.workflow_events import (
    WORKFLOW_DELETED,
    WORKFLOW_SCHEDULE,
    WorkflowDeleted,
    WorkflowSchedule,
)
from flowforge_shared.db.base import utcnow
from flowforge_shared.db.engine import Database

log = logging.getLogger("flowforge.catalog")


def apply_schedule(database: Database, payload: dict[str, Any]) -> bool:
    """Record what the message says; True when it was newer than what was recorded (False:
    an older or repeated message, or a workflow deleted meanwhile)."""
    message = WorkflowSchedule.model_validate(payload)
    with database.session() as session:
        applied = session.execute(
            update(Workflow)
            .where(
                Workflow.id == message.workflow_id,
                Workflow.schedule_sequence < message.sequence,
            )
            .values(scheduled=message.scheduled, schedule_sequence=message.sequence)
            .execution_options(synchronize_session=False)
        )
        return applied.rowcount == 1


def announce_deletion(bus: Bus, *, workflow_id: str, name: str, actor: str) -> None:
    """Tell the orchestrator, after the commit. A failure is logged: the deletion stands."""
    message = WorkflowDeleted(workflowId=workflow_id, name=name, actor=actor, deletedAt=utcnow())
    try:
        bus.send(WORKFLOW_DELETED, message.to_wire(), queue=EVENTS_QUEUE)
    except Exception:  # noqa: BLE001 - the deletion is committed
        log.exception("the orchestrator was not told workflow %s was deleted", workflow_id)


def install_schedule_consumer(app) -> None:
    """Take the orchestrator's WORKFLOW_SCHEDULE messages in this process."""
    database = app.state.database
    app.state.bus.handle(WORKFLOW_SCHEDULE, lambda payload: apply_schedule(database, payload))

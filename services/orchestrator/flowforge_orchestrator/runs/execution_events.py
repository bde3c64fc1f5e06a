"""The execution's own OpenLineage run events (the parent of its job runs): START when it
starts, one COMPLETE, FAIL or ABORT when it ends.

Where an execution starts or ends, :func:`note` keeps its event in the session; once that
session commits, the events are handed to the lineage service (:func:`install` registers
the hand-over with the process's bus). A session that rolls back hands nothing over, so no
event tells of a start or an end that did not happen."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from flowforge_orchestrator.runs.models import Execution
from flowforge_orchestrator.runs.state import Status
from flowforge_shared.contracts.events import EventType, execution_event

log = logging.getLogger("flowforge.orchestrator")
KEY = "flowforge.execution_events"
ENDINGS: dict[str, EventType] = {
    Status.SUCCEEDED.value: "COMPLETE",
    Status.FAILED.value: "FAIL",
    Status.CANCELLED.value: "ABORT",
}
_hand_over: Callable[[dict[str, Any]], None] | None = None


def note(session: Session, execution: Execution, event_type: EventType) -> None:
    """Keep the execution's event until the session commits."""
    event = execution_event(
        event_type,
        execution_id=execution.id,
        workflow_id=execution.workflow_id,
        workflow_name=execution.workflow_name,
        error=execution.error,
    )
    session.info.setdefault(KEY, []).append(event)


def note_end(session: Session, execution: Execution) -> None:
    ending = ENDINGS.get(str(execution.status))
    if ending:
        note(session, execution, ending)


def install(hand_over: Callable[[dict[str, Any]], None]) -> None:
    """Hand every committed execution event to ``hand_over`` (one per process: the last
    installed wins)."""
    global _hand_over  # noqa: PLW0603 - one bus per process
    _hand_over = hand_over
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    events = session.info.pop(KEY, None)
    if not events or _hand_over is None:
        return
    for event in events:
        try:
            _hand_over(event)
        except Exception:  # noqa: BLE001 - the execution's own record stands
            log.exception("execution event %s was not handed over", event["eventType"])


def _after_rollback(session: Session) -> None:
    session.info.pop(KEY, None)

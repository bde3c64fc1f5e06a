"""The execution's own OpenLineage run events (the parent of its job runs): START when it
starts, one COMPLETE, FAIL or ABORT when it ends.

Where an execution starts or ends, :func:`note` keeps its event in the session; once that
session commits, the events are handed to the lineage service (:func:`install` registers
the hand-over with the process's bus). A session that rolls back hands nothing over, so no
event tells of a start or an end that did not happen.

An ending is also handed, once committed, to the listener :func:`install_endings`
registers for the database it was committed to (the dependency triggers:
``{"executionId", "workflowId", "status"}``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from flowforge_orchestrator.runs.models import Execution
from flowforge_orchestrator.runs.state import Status
from flowforge_shared.contracts.events import EventType, execution_event

log = logging.getLogger("flowforge.orchestrator")
KEY = "flowforge.execution_events"
ENDINGS_KEY = "flowforge.execution_endings"
ENDINGS: dict[str, EventType] = {
    Status.SUCCEEDED.value: "COMPLETE",
    Status.FAILED.value: "FAIL",
    Status.CANCELLED.value: "ABORT",
}
_hand_over: Callable[[dict[str, Any]], None] | None = None
# Per database (its engine): an ending is handed to the listener of the database it was
# committed to, however many apps one process builds (tests do).
_on_end: dict[Engine, Callable[[dict[str, Any]], None]] = {}


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
        session.info.setdefault(ENDINGS_KEY, []).append(
            {
                "executionId": execution.id,
                "workflowId": execution.workflow_id,
                "status": str(execution.status),
            }
        )


def install(hand_over: Callable[[dict[str, Any]], None]) -> None:
    """Hand every committed execution event to ``hand_over`` (one per process: the last
    installed wins)."""
    global _hand_over  # noqa: PLW0603 - one bus per process
    _hand_over = hand_over
    _listen()


def install_endings(engine: Engine, on_end: Callable[[dict[str, Any]], None]) -> None:
    """Hand every ending committed to ``engine``'s database to ``on_end``."""
    _on_end[engine] = on_end
    _listen()


def _listen() -> None:
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_rollback", _after_rollback)


def _after_commit(session: Session) -> None:
    endings = session.info.pop(ENDINGS_KEY, None)
    events = session.info.pop(KEY, None)
    on_end = _on_end.get(session.get_bind()) if endings else None
    if endings and on_end is not None:
        for ending in endings:
            try:
                on_end(ending)
            except Exception:  # noqa: BLE001 - the execution's own record stands
                log.exception("execution ending %s was not handed over", ending["executionId"])
    if not events or _hand_over is None:
        return
    for event in events:
        try:
            _hand_over(event)
        except Exception:  # noqa: BLE001 - the execution's own record stands
            log.exception("execution event %s was not handed over", event["eventType"])


def _after_rollback(session: Session) -> None:
    session.info.pop(KEY, None)
    session.info.pop(ENDINGS_KEY, None)

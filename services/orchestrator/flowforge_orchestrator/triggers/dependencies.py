"""Dependency triggers: a workflow runs after its upstream workflows ended.

When an execution ends, the session that ended it notes the ending
(:func:`~flowforge_orchestrator.runs.execution_events.note_end`); once that session has
committed, :func:`record_firings` records a ``pending`` firing for each enabled dependency
trigger the ending satisfies, keyed by the upstream execution id
(``unique(trigger_id, firing_key)``): an ending handed over twice records one firing. The
scheduler's next pass settles it like a cron firing (the catalog's ``REQUEST_RUN``, then
``StartRun``), and the run's ``cause`` names the upstream execution(s). Settling is left to
the scheduler rather than done here because the ending's commit may still hold the run
engine's record lock, which starting a run takes.

Cycles across workflows are refused on save (:func:`check`, ``graphlib`` names the cycle).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from graphlib import CycleError, TopologicalSorter

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowforge_orchestrator.runs.models import Execution
from flowforge_orchestrator.triggers.models import Trigger, TriggerFiring
from flowforge_orchestrator.triggers.schemas import TriggerKind, UpstreamMode, UpstreamStatus
from flowforge_shared.contracts.triggers import WorkflowInfo
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import NotFound, Unprocessable

log = logging.getLogger("flowforge.scheduler")
ENDED = ("succeeded", "failed", "cancelled")
# A run the engine refused to start (the workflow was running) is kept as a failed execution
# saying "not started: ..."; it never ran, so it is no upstream ending.
RAN = or_(Execution.error.is_(None), Execution.error.not_like("not started:%"))


def _graph(session: Session, *, exclude: str | None) -> dict[str, set[str]]:
    """workflow id -> the workflows it waits for, from every dependency trigger."""
    graph: dict[str, set[str]] = {}
    for trigger in session.scalars(
        select(Trigger).where(Trigger.kind == TriggerKind.DEPENDENCY.value)
    ):
        if trigger.id != exclude:
            graph.setdefault(trigger.workflow_id, set()).update(trigger.settings["upstream"])
    return graph


def check(
    session: Session,
    *,
    workflow_id: str,
    settings: dict,
    info: Callable[[str], WorkflowInfo],
    trigger_id: str | None = None,
) -> None:
    """Unprocessable when an upstream workflow does not exist, or when the trigger would
    close a cycle across workflows (the message names them, in order)."""
    problems = []
    names: dict[str, str] = {}
    for index, upstream in enumerate(settings["upstream"]):
        try:
            names[upstream] = info(upstream).name
        except NotFound:
            problems.append((("settings", "upstream", index), f"workflow {upstream} not found"))
    if problems:
        raise Unprocessable(problems)
    graph = _graph(session, exclude=trigger_id)
    graph.setdefault(workflow_id, set()).update(settings["upstream"])
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        cycle = error.args[1]  # [a, b, ..., a]: each waits for the next
        shown = " -> ".join(_name(node, names, info) for node in reversed(cycle))
        raise Unprocessable(
            [(("settings", "upstream"), f"would make a cycle of dependency triggers: {shown}")]
        ) from None


def _name(workflow_id: str, names: dict[str, str], info: Callable[[str], WorkflowInfo]) -> str:
    if workflow_id not in names:
        try:
            names[workflow_id] = info(workflow_id).name
        except Exception:  # noqa: BLE001 - the id names it well enough
            names[workflow_id] = ""
    name = names[workflow_id]
    return f"{name} ({workflow_id})" if name else workflow_id


def _matches(wanted: str, status: str) -> bool:
    return status in ENDED if wanted == UpstreamStatus.ENDED else status == wanted


def _lock(session: Session, statement):
    if session.get_bind().dialect.name == "postgresql":
        return statement.with_for_update()  # endings of two upstreams of one trigger: in turn
    return statement


def record_firings(
    database: Database,
    *,
    execution_id: str,
    workflow_id: str,
    status: str,
    now: datetime | None = None,
) -> list[str]:
    """The firings an upstream execution's ending records (ids); each trigger at most once
    per upstream execution."""
    now = now or datetime.now(UTC)
    recorded = []
    with database.session() as session:
        candidates = [
            trigger.id
            for trigger in session.scalars(
                select(Trigger).where(
                    Trigger.kind == TriggerKind.DEPENDENCY.value, Trigger.enabled.is_(True)
                )
            )
            if workflow_id in trigger.settings.get("upstream", [])
            and _matches(trigger.settings.get("status", "succeeded"), status)
        ]
    for trigger_id in candidates:
        firing_id = _record(database, trigger_id, execution_id, workflow_id, status, now)
        if firing_id:
            recorded.append(firing_id)
    return recorded


def _record(
    database: Database, trigger_id: str, execution_id: str, workflow_id: str, status: str, now
) -> str | None:
    try:
        with database.session() as session:
            firing = _fire(session, trigger_id, execution_id, workflow_id, status, now)
            if firing is None:
                return None
            session.flush()
            return firing.id
    except IntegrityError:  # this ending was recorded already (handed over twice)
        return None


SWEEP_LOOKBACK = timedelta(minutes=10)


def sweep(database: Database, *, now: datetime, lookback: timedelta = SWEEP_LOOKBACK) -> int:
    """Record what the hand-over of recent endings did not (the process that ended them died
    between its commit and the hand-over): each scheduler pass looks at the endings of the
    last ``lookback`` of every upstream workflow, and records a firing for those no firing
    is keyed by yet (the same key as the hand-over's, so nothing is recorded twice). An
    ending before the trigger was created or last changed does not count."""
    with database.session() as session:
        triggers = list(
            session.scalars(
                select(Trigger).where(
                    Trigger.kind == TriggerKind.DEPENDENCY.value, Trigger.enabled.is_(True)
                )
            )
        )
        if not triggers:
            return 0
        upstream = {wid for trigger in triggers for wid in trigger.settings.get("upstream", [])}
        endings = session.execute(
            select(Execution.id, Execution.workflow_id, Execution.status, Execution.finished_at)
            .where(
                Execution.workflow_id.in_(upstream),
                Execution.status.in_(ENDED),
                Execution.finished_at >= now - lookback,
                RAN,
            )
            .order_by(Execution.finished_at)
        ).all()
        if not endings:
            return 0
        known = set(
            session.execute(
                select(TriggerFiring.trigger_id, TriggerFiring.firing_key).where(
                    TriggerFiring.trigger_id.in_([trigger.id for trigger in triggers]),
                    TriggerFiring.firing_key.in_([ending[0] for ending in endings]),
                )
            ).all()
        )
        todo = [
            (trigger.id, ending)
            for ending in endings
            for trigger in triggers
            if ending[1] in trigger.settings.get("upstream", [])
            and _matches(trigger.settings.get("status", "succeeded"), ending[2])
            and ending[3] >= max(trigger.created_at, trigger.updated_at)
            and (trigger.id, ending[0]) not in known
        ]
    recorded = 0
    for trigger_id, (execution_id, workflow_id, status, _) in todo:
        if _record(database, trigger_id, execution_id, workflow_id, status, now):
            log.warning(
                "dependency trigger %s: the ending of execution %s was recorded by the sweep",
                trigger_id,
                execution_id,
            )
            recorded += 1
    return recorded


def _fire(
    session: Session, trigger_id: str, execution_id: str, workflow_id: str, status: str, now
) -> TriggerFiring | None:
    trigger = session.scalar(_lock(session, select(Trigger).where(Trigger.id == trigger_id)))
    if trigger is None or not trigger.enabled:
        return None
    settings = trigger.settings
    upstream = [{"workflowId": workflow_id, "executionId": execution_id, "status": status}]
    if settings.get("mode", "all") == UpstreamMode.ALL and len(settings["upstream"]) > 1:
        last = session.scalar(
            select(TriggerFiring.recorded_at)
            .where(TriggerFiring.trigger_id == trigger.id)
            .order_by(TriggerFiring.recorded_at.desc())
            .limit(1)
        )
        since = last or trigger.created_at
        if settings.get("windowMinutes"):
            since = max(since, now - timedelta(minutes=settings["windowMinutes"]))
        own = session.scalar(select(Execution.finished_at).where(Execution.id == execution_id))
        if own is not None and own <= since:
            return None  # counted by an earlier firing already (a sweep looking back)
        wanted = settings.get("status", "succeeded")
        statuses = list(ENDED) if wanted == UpstreamStatus.ENDED else [wanted]
        for other in settings["upstream"]:
            if other == workflow_id:
                continue
            ended = session.execute(
                select(Execution.id, Execution.status)
                .where(
                    Execution.workflow_id == other,
                    Execution.status.in_(statuses),
                    Execution.finished_at > since,
                    RAN,
                )
                .order_by(Execution.finished_at.desc())
                .limit(1)
            ).first()
            if ended is None:
                return None  # still waiting for that one
            upstream.append({"workflowId": other, "executionId": ended[0], "status": ended[1]})
    firing = TriggerFiring(
        trigger_id=trigger.id,
        workflow_id=trigger.workflow_id,
        fire_time=now,
        outcome="pending",
        reason=f"upstream execution {execution_id} {status}",
        firing_key=execution_id,
        cause={"upstream": upstream},
    )
    session.add(firing)
    return firing


def on_ended(database: Database) -> Callable[[dict], None]:
    """The hand-over :mod:`~flowforge_orchestrator.runs.execution_events` calls for each
    committed ending."""

    def hand_over(ending: dict) -> None:
        try:
            record_firings(
                database,
                execution_id=ending["executionId"],
                workflow_id=ending["workflowId"],
                status=ending["status"],
            )
        except Exception:  # noqa: BLE001 - the ending stands; a sweep may record it later
            log.exception("dependency triggers of execution %s not recorded", ending)

    return hand_over

"""The scheduler: time triggers that are due become firings, and firings become runs.

Plain functions, and a thin loop (:class:`Scheduler`) that calls them every
``scheduler_interval`` seconds — a thread of ``flowforge serve``, or ``flowforge
scheduler``. Any number of schedulers may share one PostgreSQL; each firing starts at most
one run:

1. :func:`claim_and_record` claims the due triggers with ``SELECT ... FOR UPDATE SKIP
   LOCKED`` on ``next_fire_at`` (row locks, not a leader: every scheduler does useful work,
   and one that dies mid-pass releases its locks with its connection), records their
   firings (``pending``, each with the execution id its run will have) and advances
   ``next_fire_at`` — in one transaction. Another scheduler skips the locked rows and, once
   this one commits, no longer finds them due. ``unique(trigger_id, fire_time)`` makes a
   firing recorded twice impossible whatever happens. SQLite: one process, a plain
   transaction.
2. :func:`settle` takes each ``pending`` or ``queued`` firing (locked the same way) and
   asks the catalog for its run (:data:`REQUEST_RUN`), which starts it through the same
   ``StartRun`` path as a manual run. The execution id was chosen in step 1, so a firing
   asked for twice (a scheduler died between asking and recording) starts one execution.

Event triggers (:mod:`.events`): each pass also lists the watched landing prefixes and
records one firing per arrived file (keyed by path, size and time), settled like the rest.

Misfires (:func:`plan`): a firing later than ``scheduler_misfire_grace`` seconds is missed;
the trigger's ``misfire`` policy says what becomes of the missed ones. Concurrency: while
the workflow has an active execution, a firing is skipped (``skip``), waits (``queue``) or
is asked for anyway (``allow``; the run engine allows one active run per workflow, so it is
refused there and recorded as skipped with the engine's reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowforge_orchestrator.audit import service as audit
from flowforge_orchestrator.periodic import PeriodicPass
from flowforge_orchestrator.runs.models import ACTIVE_STATUSES, Execution
from flowforge_orchestrator.triggers import cron
from flowforge_orchestrator.triggers.models import Trigger, TriggerFiring
from flowforge_orchestrator.triggers.schemas import TIME_KINDS, Concurrency, Misfire
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.tasks import CATALOG_QUEUE
from flowforge_shared.contracts.triggers import REQUEST_RUN, RunRequested, WorkflowInfo
from flowforge_shared.db.base import new_id
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import ApiError, NotFound
from flowforge_shared.settings import Settings

log = logging.getLogger("flowforge.scheduler")

CLAIM_LIMIT = 100  # triggers per claim transaction
CLAIM_ROUNDS = 20  # claim transactions per pass at most
ON_TIME_LIMIT = 100  # firings of one trigger within the grace, per pass
MISSED_COUNT_LIMIT = 1000  # missed firings counted for the record (more: "1000 or more")
QUEUE_LIMIT = 10  # queued firings per trigger; more are skipped ("queue full")
# An event trigger's firings are files: each waits its turn (up to this many).
EVENT_QUEUE_LIMIT = 1000
OPEN = ("pending", "queued")
TICK = timedelta(microseconds=1)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Plan:
    """What a due trigger's firings become: each firing to ask a run for (with a note),
    each missed firing recorded as skipped (with why), and when the trigger is next due."""

    fire: list[tuple[datetime, str | None]] = field(default_factory=list)
    skipped: list[tuple[datetime, str]] = field(default_factory=list)
    next_fire_at: datetime | None = None


def plan(
    expression: str,
    tz: ZoneInfo,
    *,
    due_from: datetime,
    now: datetime,
    misfire: Misfire,
    max_catch_up: int,
    grace: timedelta,
) -> Plan:
    """The firings from ``due_from`` (the trigger's ``next_fire_at``) up to ``now``.

    On time (at most ``grace`` late): each fires. Missed (later than that):
    ``skip`` records the latest missed one as skipped, saying how many were missed;
    ``run_once`` fires the latest missed one, standing for all of them; ``catch_up`` fires
    the latest ``max_catch_up`` missed ones, in order. The trigger is next due at its first
    firing after ``now``: a missed firing is never found again."""
    result = Plan(next_fire_at=cron.next_after(expression, tz, now))
    cutoff = now - grace
    on_time, _ = cron.between(expression, tz, max(due_from, cutoff), now, ON_TIME_LIMIT)
    if due_from < cutoff:
        missed, more = cron.between(expression, tz, due_from, cutoff - TICK, MISSED_COUNT_LIMIT)
        if missed:
            count = f"{len(missed)}{' or more' if more else ''}"
            since = f"firing(s) due from {missed[0].isoformat()} while no scheduler ran"
            keep = max_catch_up if misfire == Misfire.CATCH_UP else 1
            latest = cron.latest_before(expression, tz, due_from, cutoff - TICK, keep)
            if misfire == Misfire.SKIP:
                result.skipped.append(
                    (latest[-1], f"missed: {count} {since} (misfire policy skip)")
                )
            elif misfire == Misfire.RUN_ONCE:
                result.fire.append(
                    (latest[-1], f"late: one run for {count} missed {since} (misfire run_once)")
                )
            else:
                dropped = len(missed) - len(latest)
                for index, time in enumerate(latest):
                    note = "late: caught up (misfire catch_up)"
                    if index == 0 and (dropped > 0 or more):
                        note += (
                            f"; {dropped}{' or more' if more else ''} earlier missed "
                            f"firing(s) not run (maxCatchUp {max_catch_up})"
                        )
                    result.fire.append((time, note))
    result.fire.extend((time, None) for time in on_time)
    return result


def _locking(session: Session, statement):
    if session.get_bind().dialect.name == "postgresql":
        return statement.with_for_update(skip_locked=True)
    return statement


def claim_and_record(
    session: Session, *, now: datetime, grace: timedelta, limit: int = CLAIM_LIMIT
) -> tuple[int, int]:
    """Claim the due time triggers, record their firings and advance them (the caller
    commits); returns how many triggers were claimed and how many firings recorded."""
    due = session.scalars(
        _locking(
            session,
            select(Trigger)
            .where(
                Trigger.enabled.is_(True),
                Trigger.kind.in_([kind.value for kind in TIME_KINDS]),
                Trigger.next_fire_at.is_not(None),
                Trigger.next_fire_at <= now,
            )
            .order_by(Trigger.next_fire_at)
            .limit(limit),
        )
    ).all()
    recorded = 0
    for trigger in due:
        settings = trigger.settings
        try:
            planned = plan(
                settings["expression"],
                cron.zone(settings["timezone"]),
                due_from=trigger.next_fire_at,
                now=now,
                misfire=Misfire(settings.get("misfire", "skip")),
                max_catch_up=int(settings.get("maxCatchUp", 10)),
                grace=grace,
            )
        except (cron.CronError, KeyError, ValueError) as error:  # validated on save; be safe
            log.error("trigger %s cannot be scheduled (%s): disabled", trigger.id, error)
            trigger.enabled = False
            trigger.disabled_reason = f"its schedule cannot be computed: {error}"
            trigger.version = Trigger.version + 1
            continue
        for time, why in planned.skipped:
            session.add(_firing(trigger, time, "skipped", why))
        for time, note in planned.fire:
            session.add(_firing(trigger, time, "pending", note))
        recorded += len(planned.skipped) + len(planned.fire)
        trigger.next_fire_at = planned.next_fire_at
    session.flush()
    return len(due), recorded


def _firing(trigger: Trigger, time: datetime, outcome: str, reason: str | None):
    return TriggerFiring(
        trigger_id=trigger.id,
        workflow_id=trigger.workflow_id,
        fire_time=time,
        outcome=outcome,
        reason=reason,
    )


REQUESTED_WATCH = timedelta(hours=1)


def open_firings(session: Session, *, now: datetime, limit: int = 2000) -> list[str]:
    """Ids of the firings still to settle, oldest first: pending and queued ones, and
    those handed to the broker within the last hour (found started once their execution
    exists)."""
    return list(
        session.scalars(
            select(TriggerFiring.id)
            .where(
                TriggerFiring.outcome.in_(OPEN)
                | (
                    (TriggerFiring.outcome == "requested")
                    & (TriggerFiring.recorded_at > now - REQUESTED_WATCH)
                )
            )
            .order_by(TriggerFiring.fire_time, TriggerFiring.id)
            .limit(limit)
        )
    )


def active_execution(session: Session, workflow_id: str) -> str | None:
    return session.scalar(
        select(Execution.id).where(
            Execution.workflow_id == workflow_id, Execution.status.in_(ACTIVE_STATUSES)
        )
    )


@dataclass
class Decision:
    """What to do with one open firing: ``ask`` for its run, or set ``outcome``."""

    ask: bool = False
    outcome: str | None = None
    reason: str | None = None


def decide(
    firing: TriggerFiring,
    trigger: Trigger | None,
    workflow: WorkflowInfo | None,
    active: str | None,
    queued_before: int,
) -> Decision:
    """The rules for an open firing, as a pure function of what the scheduler found."""
    if trigger is None:
        return Decision(outcome="skipped", reason="its trigger was deleted")
    if workflow is None:
        return Decision(
            outcome="skipped", reason="the workflow no longer exists: its trigger is disabled"
        )
    if workflow.status == "paused":
        return Decision(outcome="skipped", reason=f"workflow {workflow.name} is paused")
    if active == firing.execution_id:  # asked for already (by a scheduler that then died)
        return Decision(outcome="started")
    concurrency = Concurrency(trigger.settings.get("concurrency", "skip"))
    if active is not None and concurrency != Concurrency.ALLOW:
        if concurrency == Concurrency.QUEUE:
            if firing.outcome == "queued":
                return Decision()  # still waiting
            limit = EVENT_QUEUE_LIMIT if trigger.kind == "event" else QUEUE_LIMIT
            if queued_before >= limit:
                return Decision(
                    outcome="skipped",
                    reason=f"queue full: {limit} firings already wait for execution {active}",
                )
            return Decision(outcome="queued", reason=_waiting(active))
        return Decision(
            outcome="skipped",
            reason=f"workflow {workflow.name} was still running (execution {active}): "
            "concurrency policy skip",
        )
    return Decision(ask=True)


def settle(
    database: Database,
    bus: Bus,
    settings: Settings,
    firing_id: str,
    *,
    info: Callable[[str], WorkflowInfo],
) -> str | None:
    """Settle one open firing; returns its outcome (None: locked by another scheduler, or
    still waiting). PostgreSQL: the firing stays locked until its outcome is recorded."""
    with database.session() as session:
        firing = session.scalar(
            _locking(session, select(TriggerFiring).where(TriggerFiring.id == firing_id))
        )
        if firing is None:
            return None
        if firing.outcome == "requested":
            execution = session.scalar(select(Execution).where(Execution.id == firing.execution_id))
            if execution is None:
                return None
            refused = (execution.error or "").startswith("not started:")
            # Refused by the events worker (the workflow was running): kept there as a
            # failed execution saying why; the firing did not start a run.
            firing.outcome = "skipped" if refused else "started"
            if refused:
                running = _requeue(session, firing)
                if running:  # queue policy: wait again, under a new execution id
                    firing.outcome = "queued"
                    firing.execution_id = new_id()
                    firing.reason = _waiting(running)
                else:
                    firing.reason = execution.error
            return firing.outcome
        if firing.outcome not in OPEN:
            return None
        trigger = session.get(Trigger, firing.trigger_id)
        try:
            workflow = info(firing.workflow_id)
        except NotFound:
            workflow = None
        active = session.scalar(select(Execution.id).where(Execution.id == firing.execution_id))
        active = active or active_execution(session, firing.workflow_id)
        queued_before = 0
        if trigger is not None:
            queued_before = len(
                session.scalars(
                    select(TriggerFiring.id).where(
                        TriggerFiring.trigger_id == trigger.id,
                        TriggerFiring.outcome == "queued",
                        TriggerFiring.id != firing.id,
                    )
                ).all()
            )
        decision = decide(firing, trigger, workflow, active, queued_before)
        if workflow is None and trigger is not None and trigger.enabled:
            _disable_orphan(session, trigger)
        if decision.ask:
            decision = _ask(bus, firing, trigger)
            if decision.outcome == "skipped":
                running = _requeue(session, firing, trigger)
                if running:
                    decision = Decision(outcome="queued", reason=_waiting(running))
        if decision.outcome is not None:
            firing.outcome = decision.outcome
            if decision.reason:
                firing.reason = (
                    f"{firing.reason}; {decision.reason}" if firing.reason else decision.reason
                )
        return decision.outcome


def _requeue(session: Session, firing: TriggerFiring, trigger: Trigger | None = None) -> str | None:
    """The execution a ``queue`` firing must wait for after the run engine refused its run
    because the workflow was running (another scheduler asked for its own firing's run a
    moment earlier: both saw no run going). None: not a queue firing, or nothing runs."""
    trigger = trigger or session.get(Trigger, firing.trigger_id)
    if trigger is None or trigger.settings.get("concurrency", "skip") != Concurrency.QUEUE:
        return None
    return active_execution(session, firing.workflow_id)


def _waiting(execution_id: str) -> str:
    return f"waiting for execution {execution_id} to end"


def _disable_orphan(session: Session, trigger: Trigger) -> None:
    """The catalog has no such workflow any more: the trigger stops firing (audited)."""
    from flowforge_orchestrator.triggers.service import bump, snapshot

    before = snapshot(trigger)
    trigger.enabled = False
    trigger.next_fire_at = None
    trigger.disabled_reason = "the workflow no longer exists"
    bump(trigger)
    audit.record(
        session,
        actor="scheduler",
        action="trigger.update",
        entity_type="trigger",
        entity_id=trigger.id,
        before=before,
        after={**snapshot(trigger), "why": "the workflow no longer exists"},
    )


def _files(firing: TriggerFiring) -> dict[str, str] | None:
    """An event firing's file, for the job that reads it."""
    file = (firing.cause or {}).get("file")
    if not file or not file.get("jobId"):
        return None
    return {file["jobId"]: file["path"]}


def _ask(bus: Bus, firing: TriggerFiring, trigger: Trigger) -> Decision:
    request = RunRequested(
        executionId=firing.execution_id,
        workflowId=firing.workflow_id,
        trigger=trigger.kind,
        triggerId=trigger.id,
        cause={
            **(firing.cause or {}),
            "fireTime": firing.fire_time.isoformat(),
            "firingId": firing.id,
        },
        actor=f"trigger:{trigger.kind}:{trigger.id}",
        files=_files(firing),
    )
    try:
        answer = bus.send(REQUEST_RUN, request.to_wire(), queue=CATALOG_QUEUE)
    except ApiError as refused:  # in one process the refusal is the answer (409, 404, 422)
        return Decision(outcome="skipped", reason=f"not started: {refused.message}")
    if answer is None:  # on the broker: the catalog's worker starts it
        return Decision(outcome="requested")
    return Decision(outcome="started")


class Scheduler(PeriodicPass):
    """The loop: every ``scheduler_interval`` seconds, claim and record, then settle."""

    thread_name = "flowforge-scheduler"
    log = log

    def __init__(
        self,
        database: Database,
        bus: Bus,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        info: Callable[[str], WorkflowInfo] | None = None,
    ) -> None:
        from flowforge_orchestrator.triggers.service import workflow_info

        self.database = database
        self.bus = bus
        self.settings = settings
        self.clock = clock
        self.info = info or (lambda wid: workflow_info(bus, settings, workflow_id=wid))
        self._upstreams_checked: datetime | None = None
        self._upstreams_due: list[str] = []
        super().__init__()

    @property
    def interval(self) -> float:
        return self.settings.scheduler_interval

    def run_pass(self) -> dict[str, int]:
        return self.tick()

    def run_forever(self) -> None:
        self._loop()

    def tick(self) -> dict[str, int]:
        """One pass; returns how many firings were recorded and settled."""
        grace = timedelta(seconds=self.settings.scheduler_misfire_grace)
        recorded = 0
        for _ in range(CLAIM_ROUNDS):  # more due than one claim takes: claim again now
            try:
                with self.database.session() as session:
                    claimed, count = claim_and_record(session, now=self.clock(), grace=grace)
            except IntegrityError:  # a firing already recorded (a bug): the next pass retries
                log.warning("scheduler: a firing was already recorded; claiming again next pass")
                break
            recorded += count
            if claimed < CLAIM_LIMIT:
                break
        from flowforge_orchestrator.triggers import events
        from flowforge_orchestrator.triggers.dependencies import sweep

        try:
            recorded += events.poll(self.database, self.settings, now=self.clock())
        except Exception:  # noqa: BLE001 - the firings already recorded still settle
            log.exception("scheduler: the event triggers' poll failed")

        try:
            recorded += sweep(self.database, now=self.clock())
        except Exception:  # noqa: BLE001 - the firings already recorded still settle
            log.exception("scheduler: the dependency sweep failed")
        with self.database.session() as session:
            firing_ids = open_firings(session, now=self.clock())
        settled = 0
        for firing_id in firing_ids:
            if self._stop.is_set():
                break
            try:
                if settle(self.database, self.bus, self.settings, firing_id, info=self.info):
                    settled += 1
            except Exception:  # noqa: BLE001 - one firing must not stop the others
                log.exception("firing %s could not be settled", firing_id)
        self._tell_and_ask()
        return {"recorded": recorded, "settled": settled}

    def _tell_and_ask(self) -> None:
        """After the firings (they never wait for this): the catalog is sent the schedules
        it may not have been told (its status "scheduled"), and a few of the dependency
        triggers' upstream workflows are asked about (a deletion whose message was lost),
        every one once a minute."""
        from flowforge_orchestrator.triggers import lifecycle

        try:
            lifecycle.resend(self.database, self.bus, now=self.clock())
        except Exception:  # noqa: BLE001 - the next pass sends again
            log.exception("scheduler: the workflows' schedules could not be sent again")
        now = self.clock()
        try:
            if not self._upstreams_due and (
                self._upstreams_checked is None
                or now - self._upstreams_checked >= lifecycle.UPSTREAM_CHECK_EVERY
            ):
                self._upstreams_checked = now
                self._upstreams_due = lifecycle.upstream_ids(self.database)
            batch = self._upstreams_due[: lifecycle.UPSTREAM_CHECKS_PER_PASS]
            del self._upstreams_due[: len(batch)]
            if batch:
                lifecycle.check_upstreams(self.database, self.info, batch)
        except Exception:  # noqa: BLE001 - the next pass goes on
            log.exception("scheduler: the upstream workflows could not be checked")


def install_scheduler(app) -> Callable[[], None] | None:
    """The scheduler thread of the embedded default (started like the reaper)."""
    settings = app.state.settings
    if not settings.scheduler_embedded or not settings.embedded_tasks:
        return None  # with a broker, `flowforge scheduler` runs it
    scheduler = Scheduler(app.state.database, app.state.bus, settings)
    app.state.scheduler = scheduler
    app.state.starters.append(scheduler.start)
    return scheduler.stop

"""Celery tasks of the catalog (``flowforge worker catalog``): the assets a job wrote, from
the COMPLETE run events the orchestrator passes on; the runs its triggers ask for; the audit
entries the other services send; whether a workflow has an enabled time trigger."""

from __future__ import annotations

from functools import lru_cache

from flowforge_catalog.assets.consumer import record_outputs as record
from flowforge_catalog.audit.service import record_sent
from flowforge_catalog.runs.requests import request_run as start_requested_run
from flowforge_shared.bus import Bus
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.audit import RECORD_AUDIT
from flowforge_shared.contracts.tasks import CATALOG_RECORD_OUTPUTS
from flowforge_shared.contracts.triggers import REQUEST_RUN
from flowforge_shared.contracts.workflow_events import WORKFLOW_SCHEDULE
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import continued, task_headers, tracer


@lru_cache
def _database() -> Database:
    return Database(Settings().database_url_for("catalog"))


@celery.task(name=CATALOG_RECORD_OUTPUTS, bind=True)
def record_outputs(self, event: dict) -> None:
    """In the trace of the events worker's span that passed the event on."""
    with (
        continued(task_headers(self.request)),
        tracer.start_as_current_span("record outputs"),
    ):
        record(_database(), event)


@celery.task(name=RECORD_AUDIT, bind=True)
def record_audit(self, payload: dict) -> None:
    with continued(task_headers(self.request)), tracer.start_as_current_span("record audit"):
        record_sent(_database(), payload)


@lru_cache
def _bus() -> Bus:
    return Bus(Settings())


@celery.task(name=REQUEST_RUN, bind=True)
def request_run(self, payload: dict) -> str | None:
    """A trigger fired: take the snapshot and send the orchestrator its StartRun. A paused
    or deleted workflow's request is logged and dropped (the firing stays "requested")."""
    from flowforge_shared.errors import ApiError

    with continued(task_headers(self.request)), tracer.start_as_current_span("request run"):
        try:
            return start_requested_run(_database(), _bus(), payload)
        except ApiError as refused:
            import logging

            logging.getLogger("flowforge.catalog").warning(
                "run request %s refused: %s", payload.get("executionId"), refused.message
            )
            return None


@celery.task(name=WORKFLOW_SCHEDULE)
def workflow_schedule(payload: dict) -> bool:
    """Whether a workflow has an enabled time trigger (its status "scheduled")."""
    from flowforge_catalog.workflows.schedule import apply_schedule

    return apply_schedule(_database(), payload)

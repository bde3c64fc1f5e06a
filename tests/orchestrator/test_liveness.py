"""The reaper's rules, as plain functions on a real (SQLite) catalog database: which job runs
are lost, and what becomes of them. The same rules run against real worker processes in
tests/system/test_faults.py."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from flowforge_orchestrator.runs import liveness, service
from flowforge_orchestrator.runs.models import Execution
from flowforge_shared.contracts.events import run_event
from flowforge_shared.db.base import utcnow
from flowforge_shared.identity import is_gone, process_identity
from tests.catalog.factories import csv_job, gold_job

LEASE = liveness.Lease(heartbeat_timeout=60, dispatch_grace=30, max_attempts=3)


def wire(job: dict) -> dict:
    return {k: v for k, v in job.items() if k != "name"}


def start(database, workflow="w1") -> tuple[str, list]:
    """An execution of ingest -> gold; returns its id and the first tasks (not yet sent)."""
    jobs = [
        ("a", "ingest", 0, wire(csv_job("bronze_tx", "ingest"))),
        ("b", "gold", 1, wire(gold_job("bronze_tx", "gold_tx", "gold"))),
    ]
    with database.session() as session:
        execution, tasks = service.start(
            session,
            workflow_id=workflow,
            workflow_name=workflow,
            jobs=jobs,
            selected=None,
            trigger="manual",
            actor="test",
        )
        return execution.id, tasks


def event(execution_id, job_run_id, kind, attempt, **facets):
    return run_event(
        kind,
        job_run_id=job_run_id,
        execution_id=execution_id,
        workflow_name="w1",
        job_id="a",
        job_name="ingest",
        attempt=attempt,
        owner="worker@elsewhere/abc:1.1",
        facets=facets,
    )


def record(database, payload):
    with database.session() as session:
        return service.record_event(session, payload)


def reap(database, execution_id, *, after=0.0, epoch=None, gone=lambda owner: False, judge=True):
    with database.session() as session:
        execution = liveness.lock(session, execution_id)
        assert execution is not None
        return liveness.reap(
            session,
            execution,
            lease=LEASE,
            epoch=epoch,
            gone=gone,
            judge_heartbeats=judge,
            now=utcnow() + timedelta(seconds=after),
        )


def state(database, execution_id) -> Execution:
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        execution.jobs  # load them before the session closes  # noqa: B018
        return execution


def sent(database, tasks, epoch=None, owner=None):
    with database.session() as session:
        service.mark_sent(session, [t.job_run_id for t in tasks], epoch=epoch, owner=owner)


def test_a_dispatch_never_sent_is_sent_again_once_the_grace_is_over(database):
    execution_id, tasks = start(database)
    assert [t.attempt for t in tasks] == [1]
    assert reap(database, execution_id, after=10).resent == []
    sweep = reap(database, execution_id, after=31)
    assert [(t.job_run_id, t.attempt) for t in sweep.resent] == [(tasks[0].job_run_id, 1)]
    assert sweep.tasks == []  # the same attempt, not a new one
    # Once sent, it waits in the broker's queue as long as it must.
    sent(database, tasks, epoch="redis-1")
    assert reap(database, execution_id, after=3600, epoch="redis-1").settled == []


def test_a_running_job_that_stops_beating_is_retried_and_its_old_attempt_ignored(database):
    execution_id, tasks = start(database)
    sent(database, tasks)
    job_run = tasks[0].job_run_id
    record(database, event(execution_id, job_run, "START", 1))
    assert reap(database, execution_id, after=30).settled == []
    assert reap(database, execution_id, after=61, judge=False).settled == []

    sweep = reap(database, execution_id, after=61)
    assert [(t.job_run_id, t.attempt) for t in sweep.tasks] == [(job_run, 2)]
    job = state(database, execution_id).jobs[0]
    assert job.status == "queued" and job.attempt == 2
    assert job.note.startswith("worker lost (no heartbeat from worker@elsewhere")
    assert job.note.endswith("retrying (attempt 2)")
    # The lost attempt resurfaces and reports: nothing it says counts any more.
    result = {"rowsRead": 5, "rowsWritten": 5}
    record(database, event(execution_id, job_run, "COMPLETE", 1, flowforge_result=result))
    assert state(database, execution_id).jobs[0].status == "queued"
    record(database, event(execution_id, job_run, "START", 2))
    assert state(database, execution_id).jobs[0].status == "running"


def test_after_the_last_attempt_a_lost_job_fails_and_the_run_ends(database):
    execution_id, tasks = start(database)
    sent(database, tasks)
    job_run = tasks[0].job_run_id
    for attempt in (1, 2, 3):
        record(database, event(execution_id, job_run, "START", attempt))
        sweep = reap(database, execution_id, after=61)
        sent(database, sweep.tasks)
    execution = state(database, execution_id)
    assert execution.status == "failed"
    ingest, gold = execution.jobs
    assert ingest.status == "failed" and ingest.attempt == 3
    assert ingest.error["message"].startswith("worker lost (no heartbeat")
    assert ingest.error["message"].endswith("gave up after 3 attempts")
    assert gold.status == "skipped"
    assert ingest.rows_written == 0
    with database.session() as session:
        kinds = [
            e.event_type
            for e in service.events_after(session, execution_id=execution_id, after_id=0)
        ]
    assert kinds.count("RETRY") == 2 and kinds[-1] == "FAIL"


def test_a_holder_known_to_have_ended_is_settled_without_waiting(database):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    owner = process_identity("embedded", child.pid)
    assert not is_gone(owner)
    child.kill()
    child.wait()
    assert is_gone(owner)
    assert not is_gone(process_identity("embedded"))  # this very process
    assert not is_gone("worker@another-host/0123456789ab:1.1")  # cannot tell: wait the lease

    execution_id, tasks = start(database)
    sent(database, tasks, owner=owner)  # held by an embedded server that has stopped
    sweep = reap(database, execution_id, after=1, gone=is_gone)
    assert [t.attempt for t in sweep.tasks] == [2]
    assert "has stopped" in state(database, execution_id).jobs[0].note


def test_a_queued_task_forgotten_by_a_restarted_broker_is_queued_again(database):
    execution_id, tasks = start(database)
    sent(database, tasks, epoch="redis-run-1")
    assert reap(database, execution_id, after=5, epoch="redis-run-1").tasks == []
    sweep = reap(database, execution_id, after=5, epoch="redis-run-2")
    assert [t.attempt for t in sweep.tasks] == [2]
    assert "broker restarted" in state(database, execution_id).jobs[0].note


def test_a_cancelling_execution_whose_worker_is_lost_ends_cancelled(database):
    execution_id, tasks = start(database)
    sent(database, tasks)
    record(database, event(execution_id, tasks[0].job_run_id, "START", 1))
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        service.cancel(session, execution=execution, actor="test")
    assert state(database, execution_id).status == "cancelling"
    # Another run of the workflow must wait: the job may still be writing.
    with pytest.raises(Exception, match="already running"):
        start(database)
    sweep = reap(database, execution_id, after=61)
    assert sweep.tasks == []
    execution = state(database, execution_id)
    assert execution.status == "cancelled" and execution.finished_at is not None
    assert [job.status for job in execution.jobs] == ["cancelled", "cancelled"]
    start(database)  # the workflow is free again


def test_heartbeats_of_the_current_attempt_count_and_others_do_not(database):
    execution_id, tasks = start(database)
    sent(database, tasks)
    job_run = tasks[0].job_run_id
    record(database, event(execution_id, job_run, "START", 1))
    sweep = reap(database, execution_id, after=61)  # attempt 1 lost, attempt 2 dispatched
    sent(database, sweep.tasks)
    with database.session() as session:
        old = {"jobRunId": job_run, "executionId": execution_id, "attempt": 1, "owner": "x"}
        assert not service.record_heartbeat(session, old)
        new = {**old, "attempt": 2}
        assert service.record_heartbeat(session, new)
    assert state(database, execution_id).jobs[0].heartbeat_at is not None

"""The scheduler's passes on the embedded app (SQLite; a fake clock drives each pass): a
due cron trigger starts a run through the catalog's StartRun path, a paused workflow does
not fire, the concurrency policies, a firing asked for by a scheduler that died starts one
execution, and a restart after an outage applies the misfire policy."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from flowforge.app import create_app
from flowforge_orchestrator.runs.models import Execution
from flowforge_orchestrator.triggers import scheduler as sched
from flowforge_orchestrator.triggers.models import Trigger, TriggerFiring
from flowforge_shared.contracts.tasks import CATALOG_QUEUE
from flowforge_shared.contracts.triggers import REQUEST_RUN, RunRequested, WorkflowInfo
from flowforge_shared.contracts.workflow_events import WORKFLOW_DELETED
from tests.conftest import ADMIN_TOKEN, make_settings

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def platform(tmp_path):
    settings = make_settings(tmp_path, scheduler_embedded=False)
    landing = Path(settings.landing_root) / "tiny"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "t.csv").write_text("id,name\n1,a\n2,b\n")
    app = create_app(settings)
    client = TestClient(app)  # no lifespan: the test drives the scheduler's passes
    yield app, client
    app.state.runtime.close()
    app.state.database.dispose()


def make_workflow(client) -> str:
    response = client.post(
        "/api/workflows",
        json={"name": f"wf-{uuid.uuid4().hex[:8]}", "status": "active"},
        headers=HEADERS,
    )
    workflow = response.json()
    job = {
        "name": "Ingest tiny",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "tiny/t.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": f"bronze_t_{uuid.uuid4().hex[:8]}"}},
    }
    created = client.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=HEADERS)
    assert created.status_code == 201, created.text
    return workflow["id"]


def add_trigger(client, workflow_id: str, **settings) -> dict:
    body = {"kind": "cron", "settings": {"expression": "* * * * *", **settings}}
    response = client.post(f"/api/workflows/{workflow_id}/triggers", json=body, headers=HEADERS)
    assert response.status_code == 201, response.text
    return response.json()


def scheduler_at(app, now: datetime) -> tuple[sched.Scheduler, Clock]:
    clock = Clock(now)
    return sched.Scheduler(
        app.state.database, app.state.bus, app.state.settings, clock=clock
    ), clock


def next_fire_at(app, trigger_id: str) -> datetime:
    with app.state.database.session() as session:
        return session.get(Trigger, trigger_id).next_fire_at


def firings(client, workflow_id: str) -> list[dict]:
    response = client.get(f"/api/workflows/{workflow_id}/firings", headers=HEADERS)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["data"]))


def wait_ended(client, execution_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        execution = client.get(f"/api/executions/{execution_id}", headers=HEADERS).json()
        if execution["status"] in ("succeeded", "failed", "cancelled"):
            return execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.1)


def test_a_due_cron_trigger_starts_one_run_like_a_manual_one(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id)
    due = next_fire_at(app, trigger["id"])
    scheduler, clock = scheduler_at(app, due - timedelta(seconds=5))
    assert scheduler.tick() == {"recorded": 0, "settled": 0}  # not due yet
    clock.now = due + timedelta(seconds=1)
    assert scheduler.tick()["recorded"] == 1
    assert scheduler.tick() == {"recorded": 0, "settled": 0}  # one firing, once
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "started" and firing["fireTime"].startswith(due.isoformat()[:19])
    execution = wait_ended(client, firing["executionId"])
    assert execution["status"] == "succeeded", execution
    assert execution["trigger"] == "cron" and execution["workflowId"] == workflow_id
    assert execution["cause"] == {
        "triggerId": trigger["id"],
        "fireTime": due.isoformat(),
        "firingId": firing["id"],
    }
    assert next_fire_at(app, trigger["id"]) == due + timedelta(minutes=1)


def test_a_paused_workflow_does_not_fire_and_resuming_replays_nothing(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id)
    assert client.post(f"/api/workflows/{workflow_id}/pause", headers=HEADERS).status_code == 200
    due = next_fire_at(app, trigger["id"])
    scheduler, clock = scheduler_at(app, due + timedelta(seconds=1))
    scheduler.tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "skipped" and "paused" in firing["reason"]
    assert firing["executionId"] is None
    assert client.post(f"/api/workflows/{workflow_id}/resume", headers=HEADERS).status_code == 200
    clock.now = due + timedelta(seconds=2)
    scheduler.tick()
    assert len(firings(client, workflow_id)) == 1


def hold_workflow(app, workflow_id: str) -> str:
    """An active execution of the workflow (as if a run were going on)."""
    execution_id = str(uuid.uuid4())
    with app.state.database.session() as session:
        session.add(
            Execution(
                id=execution_id,
                workflow_id=workflow_id,
                workflow_name="held",
                status="running",
                trigger="manual",
            )
        )
    return execution_id


def release(app, execution_id: str) -> None:
    with app.state.database.session() as session:
        execution = session.scalar(select(Execution).where(Execution.id == execution_id))
        execution.status = "succeeded"


def test_concurrency_skip_records_the_running_execution(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id)
    held = hold_workflow(app, workflow_id)
    scheduler, _ = scheduler_at(app, next_fire_at(app, trigger["id"]) + timedelta(seconds=1))
    scheduler.tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "skipped" and held in firing["reason"]


def test_concurrency_queue_waits_then_starts(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id, concurrency="queue")
    held = hold_workflow(app, workflow_id)
    due = next_fire_at(app, trigger["id"])
    scheduler, clock = scheduler_at(app, due + timedelta(seconds=1))
    scheduler.tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "queued" and held in firing["reason"]
    scheduler.tick()
    assert firings(client, workflow_id)[0]["outcome"] == "queued"
    release(app, held)
    scheduler.tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "started"
    assert wait_ended(client, firing["executionId"])["status"] == "succeeded"


def test_concurrency_allow_asks_and_the_engine_refusal_is_recorded(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id, concurrency="allow")
    held = hold_workflow(app, workflow_id)
    scheduler, _ = scheduler_at(app, next_fire_at(app, trigger["id"]) + timedelta(seconds=1))
    scheduler.tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "skipped"
    assert "not started" in firing["reason"] and "already running" in firing["reason"]
    assert held in firing["reason"]


def test_a_firing_asked_for_by_a_scheduler_that_died_starts_one_execution(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id)
    due = next_fire_at(app, trigger["id"])
    with app.state.database.session() as session:  # the dead scheduler's first step
        sched.claim_and_record(session, now=due + timedelta(seconds=1), grace=timedelta(60))
    with app.state.database.session() as session:
        firing = session.scalar(select(TriggerFiring))
        execution_id = firing.execution_id
    request = RunRequested(  # ... and its request, sent before it could record the outcome
        executionId=execution_id,
        workflowId=workflow_id,
        trigger="cron",
        triggerId=trigger["id"],
        actor="trigger",
    )
    app.state.bus.send(REQUEST_RUN, request.to_wire(), queue=CATALOG_QUEUE)
    scheduler, _ = scheduler_at(app, due + timedelta(seconds=2))
    scheduler.tick()
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "started" and firing["executionId"] == execution_id
    wait_ended(client, execution_id)
    with app.state.database.session() as session:
        ran = session.scalars(select(Execution).where(Execution.workflow_id == workflow_id))
        assert [e.id for e in ran] == [execution_id]


def test_after_an_outage_catch_up_runs_the_latest_missed_firings(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(
        client, workflow_id, misfire="catch_up", maxCatchUp=2, concurrency="queue"
    )
    due = next_fire_at(app, trigger["id"])
    scheduler, clock = scheduler_at(app, due + timedelta(minutes=10, seconds=5))  # 10 min down
    scheduler.tick()
    recorded = firings(client, workflow_id)
    expected = [due + timedelta(minutes=minute) for minute in (8, 9, 10)]
    assert [f["fireTime"][:19] for f in recorded] == [t.isoformat()[:19] for t in expected]
    assert "8 earlier missed firing(s) not run" in recorded[0]["reason"]
    # one starts, the next two wait their turn (queue), and all three run in order
    for _ in range(200):
        scheduler.tick()
        if all(f["outcome"] == "started" for f in firings(client, workflow_id)):
            break
        time.sleep(0.1)
    recorded = firings(client, workflow_id)
    assert [f["outcome"] for f in recorded] == ["started"] * 3
    for firing in recorded:
        assert wait_ended(client, firing["executionId"])["status"] == "succeeded"
    assert next_fire_at(app, trigger["id"]) == due + timedelta(minutes=11)
    assert clock.now < next_fire_at(app, trigger["id"])


def test_a_deleted_trigger_leaves_no_open_firing(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id)
    assert isinstance(next_fire_at(app, trigger["id"]), datetime)
    url = f"/api/workflows/{workflow_id}/triggers/{trigger['id']}"
    assert client.delete(url, headers=HEADERS).status_code == 204
    scheduler, _ = scheduler_at(app, datetime.now(UTC) + timedelta(minutes=5))
    assert scheduler.tick() == {"recorded": 0, "settled": 0}


def test_a_trigger_of_a_deleted_workflow_is_disabled(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_trigger(client, workflow_id)
    due = next_fire_at(app, trigger["id"])
    # The catalog's WORKFLOW_DELETED is lost (no orchestrator handles it here): the scheduler
    # still finds out when the trigger next fires (test_trigger_lifecycle: the message).
    app.state.bus.handlers.pop(WORKFLOW_DELETED)
    assert client.delete(f"/api/workflows/{workflow_id}", headers=HEADERS).status_code == 204
    scheduler, _ = scheduler_at(app, due + timedelta(seconds=1))
    scheduler.tick()
    assert client.get(f"/api/workflows/{workflow_id}/firings", headers=HEADERS).status_code == 404
    with app.state.database.session() as session:
        [firing] = session.scalars(select(TriggerFiring)).all()
        assert firing.outcome == "skipped" and "no longer exists" in firing.reason
        stored = session.get(Trigger, trigger["id"])
        assert stored.enabled is False and stored.next_fire_at is None
        assert stored.disabled_reason == "the workflow no longer exists"
    log = client.get(
        "/api/audit", params={"entityType": "trigger", "entityId": trigger["id"]}, headers=HEADERS
    ).json()["data"]
    assert log[0]["actor"] == "scheduler" and log[0]["action"] == "trigger.update"


def test_more_triggers_due_than_one_claim_takes_are_all_claimed_in_one_pass(platform, monkeypatch):
    app, _ = platform
    monkeypatch.setattr(sched, "CLAIM_LIMIT", 2)
    due = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with app.state.database.session() as session:
        for index in range(5):
            session.add(
                Trigger(
                    workflow_id=f"w{index}",
                    kind="cron",
                    enabled=True,
                    settings={"expression": "* * * * *", "timezone": "UTC"},
                    next_fire_at=due,
                    created_by="test",
                )
            )
    paused = lambda wid: WorkflowInfo(id=wid, name=wid, status="paused")  # noqa: E731
    scheduler = sched.Scheduler(
        app.state.database, app.state.bus, app.state.settings, clock=lambda: due, info=paused
    )
    assert scheduler.tick() == {"recorded": 5, "settled": 5}

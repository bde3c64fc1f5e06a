"""Dependency triggers on the embedded app served for real (uvicorn, its scheduler thread):
A -> B -> C runs in order after A is started by hand, each once, every run's cause naming
its upstream execution; `all` waits for every upstream; a cycle across workflows, an
unknown upstream and bad settings are refused on save."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import httpx
import pytest

from flowforge_orchestrator.triggers import dependencies
from tests.tiny_platform import HEADERS, make_workflow, served_tiny


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request, tmp_path):
    url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgres" else None
    with served_tiny(tmp_path, url, scheduler_interval=0.2) as served_app:
        yield served_app


def depend(client, workflow_id: str, **settings) -> httpx.Response:
    return client.post(
        f"/api/workflows/{workflow_id}/triggers",
        json={"kind": "dependency", "settings": settings},
        headers=HEADERS,
    )


def runs(client, workflow_id: str) -> list[dict]:
    response = client.get("/api/executions", params={"workflowId": workflow_id}, headers=HEADERS)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["data"] if isinstance(body, dict) else body


def wait_for_run(client, workflow_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = [
            run
            for run in runs(client, workflow_id)
            if run["status"] in ("succeeded", "failed", "cancelled")
        ]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no run of {workflow_id} ended"
        time.sleep(0.2)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_chain_runs_in_order_once_each_after_a_manual_run(platform):
    _, client = platform
    a, b, c = (make_workflow(client, name) for name in "abc")
    assert depend(client, b, upstream=[a]).status_code == 201
    assert depend(client, c, upstream=[b]).status_code == 201
    started = client.post(f"/api/workflows/{a}/run", headers=HEADERS)
    assert started.status_code in (200, 201, 202), started.text
    run_a = wait_for_run(client, a)
    run_b = wait_for_run(client, b)
    run_c = wait_for_run(client, c)
    assert [run["status"] for run in (run_a, run_b, run_c)] == ["succeeded"] * 3
    assert run_b["trigger"] == "dependency" and run_c["trigger"] == "dependency"
    assert run_b["cause"]["upstream"] == [
        {"workflowId": a, "executionId": run_a["id"], "status": "succeeded"}
    ]
    assert run_c["cause"]["upstream"][0]["executionId"] == run_b["id"]
    assert ts(run_a["finishedAt"]) <= ts(run_b["startedAt"])
    assert ts(run_b["finishedAt"]) <= ts(run_c["startedAt"])
    time.sleep(1.5)  # a few more scheduler passes: nothing runs twice
    assert [len(runs(client, w)) for w in (a, b, c)] == [1, 1, 1]
    firings = client.get(f"/api/workflows/{b}/firings", headers=HEADERS).json()["data"]
    assert len(firings) == 1 and firings[0]["outcome"] == "started"
    assert firings[0]["cause"] == {"upstream": run_b["cause"]["upstream"]}


def test_an_ending_handed_over_twice_records_one_firing(platform):
    app, client = platform
    a, b = make_workflow(client, "a"), make_workflow(client, "b")
    assert depend(client, b, upstream=[a], status="failed").status_code == 201
    execution_id = str(uuid.uuid4())
    first = dependencies.record_firings(
        app.state.database, execution_id=execution_id, workflow_id=a, status="failed"
    )
    again = dependencies.record_firings(
        app.state.database, execution_id=execution_id, workflow_id=a, status="failed"
    )
    succeeded = dependencies.record_firings(
        app.state.database, execution_id=str(uuid.uuid4()), workflow_id=a, status="succeeded"
    )
    assert len(first) == 1 and again == [] and succeeded == []


def test_all_waits_for_every_upstream(platform):
    app, client = platform
    a, b, c = (make_workflow(client, name) for name in "abc")
    created = depend(client, c, upstream=[a, b], mode="all", status="ended")
    assert created.status_code == 201, created.text
    # A ended (as far as the trigger knows); B has not: nothing fires yet.
    assert (
        dependencies.record_firings(
            app.state.database, execution_id=str(uuid.uuid4()), workflow_id=a, status="failed"
        )
        == []
    )
    client.post(f"/api/workflows/{a}/run", headers=HEADERS)
    wait_for_run(client, a)
    assert runs(client, c) == []
    client.post(f"/api/workflows/{b}/run", headers=HEADERS)
    wait_for_run(client, b)
    run_c = wait_for_run(client, c)
    assert {item["workflowId"] for item in run_c["cause"]["upstream"]} == {a, b}


def test_cycles_unknown_upstream_and_bad_settings_are_refused(platform):
    _, client = platform
    a, b, c = (make_workflow(client, name) for name in "abc")
    assert depend(client, b, upstream=[a]).status_code == 201
    assert depend(client, c, upstream=[b]).status_code == 201
    cycle = depend(client, a, upstream=[c])
    assert cycle.status_code == 422, cycle.text
    message = str(cycle.json())
    assert "cycle" in message and a in message and b in message and c in message
    itself = depend(client, a, upstream=[a])
    assert itself.status_code == 422 and "cycle" in str(itself.json())
    unknown = depend(client, a, upstream=[str(uuid.uuid4())])
    assert unknown.status_code == 422 and "settings" in str(unknown.json())
    for bad in ({}, {"upstream": []}, {"upstream": [b, b]}, {"upstream": [b], "mode": "some"}):
        response = depend(client, a, **bad)
        assert response.status_code == 422, (bad, response.text)
    # A change that would close a cycle is refused too.
    trigger = depend(client, a, upstream=[make_workflow(client, "d")])
    assert trigger.status_code == 201
    path = f"/api/workflows/{a}/triggers/{trigger.json()['id']}"
    changed = client.patch(
        path, json={"settings": {"upstream": [c]}, "version": 1}, headers=HEADERS
    )
    assert changed.status_code == 422 and "cycle" in str(changed.json())


def test_the_scheduler_sweep_records_an_ending_whose_hand_over_was_lost(platform):
    app, client = platform
    a, b = make_workflow(client, "a"), make_workflow(client, "b")
    before = str(uuid.uuid4())  # ended before the trigger existed: never counts
    lost = str(uuid.uuid4())
    refused = str(uuid.uuid4())  # a run the engine refused to start never ran: no ending
    with app.state.database.session() as session:
        session.add(ended_execution(before, a))
    time.sleep(0.05)
    assert depend(client, b, upstream=[a], status="ended").status_code == 201
    time.sleep(0.05)
    with app.state.database.session() as session:
        session.info.clear()  # written as if by a process that died before its hand-over
        session.add(ended_execution(refused, a, error="not started: a is already running"))
        session.add(ended_execution(lost, a))
    run_b = wait_for_run(client, b)  # the embedded scheduler's sweep
    assert run_b["cause"]["upstream"][0]["executionId"] == lost
    time.sleep(1)
    assert len(runs(client, b)) == 1
    firings = client.get(f"/api/workflows/{b}/firings", headers=HEADERS).json()["data"]
    assert [firing["cause"]["upstream"][0]["executionId"] for firing in firings] == [lost]


def ended_execution(execution_id: str, workflow_id: str, error: str | None = None):
    from flowforge_orchestrator.runs.models import Execution
    from flowforge_shared.db.base import utcnow

    now = utcnow()
    return Execution(
        id=execution_id,
        workflow_id=workflow_id,
        workflow_name="upstream",
        status="failed" if error else "succeeded",
        trigger="manual",
        started_at=now,
        finished_at=now,
        error=error,
    )

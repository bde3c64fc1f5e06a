"""A run request crosses from the catalog to the orchestrator as a :class:`StartRun` message:
delivered twice it starts one execution; refused by message it is kept as a failed execution
saying why; and a catalog served without the orchestrator puts it on the orchestrator's
queue on the broker (real Redis), where ``flowforge worker events`` takes it."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from fastapi.testclient import TestClient

from flowforge_orchestrator.dispatch import handle_start_run
from flowforge_orchestrator.runs.models import Execution, JobRun
from flowforge_shared.contracts.runs import START_RUN, JobSnapshot, StartRun
from flowforge_shared.contracts.tasks import EVENTS_QUEUE
from flowforge_shared.errors import Conflict
from tests.catalog.factories import csv_job, database_job
from tests.conftest import ADMIN_TOKEN, make_settings, require_service


class Broker:
    """Takes tasks as a broker would, so the test sees what was sent (and how often)."""

    owner = None

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, tasks, queues):
        self.sent += [task.job_run_id for task in tasks]
        return [task.job_run_id for task in tasks], None


E1 = "00000000-0000-4000-8000-0000000000e1"
E2 = "00000000-0000-4000-8000-0000000000e2"


def request(execution_id: str = E1, workflow: str = "w1", connection=None) -> dict:
    job = {k: v for k, v in (database_job() if connection else csv_job()).items() if k != "name"}
    return StartRun(
        executionId=execution_id,
        workflowId=workflow,
        workflowName=workflow,
        jobs=[
            JobSnapshot(
                jobId="j1",
                name="ingest",
                position=0,
                config=job,
                inputs=[{"filePath": "crm/customers.csv"}],
                connection=connection,
            )
        ],
        actor="tester",
    ).to_wire()


def test_the_same_request_twice_starts_one_execution_and_sends_once(database) -> None:
    broker = Broker()
    first = handle_start_run(database, broker, request(), answer_conflict=False)
    again = handle_start_run(database, broker, request(), answer_conflict=False)
    assert first == again == E1
    with database.session() as session:
        assert session.query(Execution).count() == 1
        [job] = session.query(JobRun).all()
        assert job.inputs == [{"filePath": "crm/customers.csv"}]
    assert len(broker.sent) == 1


def test_the_connection_snapshot_of_the_request_is_what_the_task_carries(database) -> None:
    broker = Broker()
    connection = {"id": "c1", "type": "postgresql", "host": "db", "passwordEncrypted": "x"}
    handle_start_run(database, broker, request(connection=connection), answer_conflict=False)
    from flowforge_orchestrator.runs import service

    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=E1)
        task = service.task_for(session, execution, execution.jobs[0])
    assert task.connection == connection


def test_a_request_refused_by_message_is_a_failed_execution_saying_why(database) -> None:
    broker = Broker()
    handle_start_run(database, broker, request(E1), answer_conflict=False)
    refused = handle_start_run(database, broker, request(E2), answer_conflict=False)
    assert refused == E2
    with database.session() as session:
        execution = session.query(Execution).filter_by(id=E2).one()
        assert execution.status == "failed"
        assert execution.error.startswith("not started: workflow w1 is already running")
        assert execution.jobs == []
    assert len(broker.sent) == 1


def test_a_waiting_requester_gets_the_conflict(database) -> None:
    broker = Broker()
    handle_start_run(database, broker, request(E1), answer_conflict=True)
    with pytest.raises(Conflict, match="already running"):
        handle_start_run(database, broker, request(E2), answer_conflict=True)
    with database.session() as session:
        assert session.query(Execution).filter_by(id=E2).count() == 0


def test_a_catalog_alone_puts_the_request_on_the_orchestrators_queue(tmp_path) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    from flowforge.app import create_single_service_app

    broker_url = "redis://127.0.0.1:6379/13"
    queue = redis.Redis.from_url(broker_url)
    queue.delete(EVENTS_QUEUE)
    settings = make_settings(tmp_path, broker_url=broker_url)
    app = create_single_service_app("catalog", settings)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(app) as client:
        created = client.post("/api/workflows", json={"name": "alone"}, headers=headers)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        job = client.post(
            f"/api/workflows/{workflow_id}/jobs", json=csv_job("bronze_alone"), headers=headers
        )
        assert job.status_code == 201, job.text
        started = client.post(f"/api/workflows/{workflow_id}/run", headers=headers)
        assert started.status_code == 202, started.text
        execution_id = started.json()["executionId"]
        # The catalog serves no executions: the orchestrator's worker will.
        assert client.get(f"/api/executions/{execution_id}", headers=headers).status_code == 404

    messages = [json.loads(raw) for raw in queue.lrange(EVENTS_QUEUE, 0, -1)]
    [message] = [m for m in messages if m["headers"]["task"] == START_RUN]
    body = json.loads(base64.b64decode(message["body"]))
    sent = StartRun.model_validate(body[0][0])
    assert sent.execution_id == execution_id
    assert sent.workflow_name == "alone"
    assert [job.config["destinationConfig"] for job in sent.jobs] == [
        {"bronzeConfig": {"tableName": "bronze_alone"}}
    ]
    queue.delete(EVENTS_QUEUE)


def test_a_catalog_alone_without_a_broker_says_so_with_a_503(tmp_path) -> None:
    from flowforge.app import create_single_service_app

    app = create_single_service_app("catalog", make_settings(tmp_path))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(app) as client:
        workflow_id = client.post("/api/workflows", json={"name": "nb"}, headers=headers).json()[
            "id"
        ]
        refused = client.post(f"/api/workflows/{workflow_id}/run", headers=headers)
    assert refused.status_code == 503, refused.text
    assert "FLOWFORGE_BROKER_URL" in refused.json()["detail"]


def test_a_waiting_requester_of_a_running_workflow_is_answered_without_the_record_lock(
    database,
) -> None:
    """Every run event and start waits for dispatch.record_lock; a request that can only be
    refused (the workflow is running) is answered before it, even while it is held. The
    same request repeated still returns its execution."""
    from concurrent.futures import ThreadPoolExecutor

    from flowforge_orchestrator import dispatch

    broker = Broker()
    handle_start_run(database, broker, request(E1), answer_conflict=True)
    with ThreadPoolExecutor(1) as pool, dispatch.record_lock:  # held by "another" start
        refused = pool.submit(handle_start_run, database, broker, request(E2), answer_conflict=True)
        with pytest.raises(Conflict, match="already running"):
            refused.result(timeout=10)
    assert handle_start_run(database, broker, request(E1), answer_conflict=True) == E1
    with database.session() as session:
        assert session.query(Execution).count() == 1
    assert len(broker.sent) == 1

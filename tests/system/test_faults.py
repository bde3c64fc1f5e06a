"""Fault injection against real processes: workers killed with SIGKILL or frozen, the
embedded server killed mid-run and restarted, a Redis of the test's own killed and
restarted empty, a run requested while the broker is down, a cancel whose worker is gone.

Every test ends with the same checks, made independently of FlowForge's code: the table
holds exactly the expected rows, each once; no execution is left active; every status and
count says what was committed."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import PG_HOST, PG_PORT, require_service
from tests.system.conftest import workflow_jobs
from tests.system.processes import (
    RedisServer,
    Server,
    Workers,
    base_env,
    no_active_execution,
    settled,
    wait_for,
)
from tests.system.test_celery_run import big_csv

ROWS = 1_500_000


@pytest.fixture
def fresh_postgres_url():
    """A PostgreSQL database of this test alone (no other test's executions in it)."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    name = f"flowforge_fault_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Cluster:
    """PostgreSQL catalog, a Redis of its own, `flowforge serve` as the API (it only
    dispatches), and `flowforge worker` processes."""

    def __init__(self, tmp_path: Path, postgres_url: str) -> None:
        self.dir = tmp_path
        self.redis = RedisServer(tmp_path).start()
        settings = {
            "FLOWFORGE_DATABASE_URL": postgres_url,
            "FLOWFORGE_BROKER_URL": self.redis.url,
            "FLOWFORGE_AUTO_MIGRATE": "true",
        }
        self.api = Server(tmp_path, **settings).start()
        self.workers = Workers(base_env(tmp_path, **settings), tmp_path)
        self.client = self.api.client()

    def stop(self) -> None:
        self.client.close()
        self.workers.stop()
        self.api.stop()
        self.redis.stop()


@pytest.fixture
def cluster(tmp_path, fresh_postgres_url):
    cluster = Cluster(tmp_path, fresh_postgres_url)
    try:
        yield cluster
    finally:
        cluster.stop()


def create_workflow(client, jobs: list[dict]) -> str:
    workflow = client.post("/api/workflows", json={"name": f"faults-{uuid.uuid4().hex[:6]}"})
    assert workflow.status_code == 201, workflow.text
    for job in jobs:
        created = client.post(f"/api/workflows/{workflow.json()['id']}/jobs", json=job)
        assert created.status_code == 201, created.text
    return workflow.json()["id"]


def start_run(client, workflow_id: str) -> str:
    response = client.post(f"/api/workflows/{workflow_id}/run")
    assert response.status_code == 202, response.text
    return response.json()["executionId"]


def reading(client, execution_id: str, job: int = 0) -> dict:
    """Wait until the job is inside its read (a batch went through), not yet done."""

    def inside():
        current = client.get(f"/api/executions/{execution_id}").json()["jobs"][job]
        assert current["status"] in ("queued", "running"), current
        return current if current["status"] == "running" and current["rowsRead"] > 0 else None

    current = wait_for(inside, 120, 0.05, "the job to read its first batch")
    assert current["rowsRead"] < ROWS, "the job finished before it could be interrupted"
    return current


def data_commits(lake: Path, table: str = "bronze_tx") -> list[str]:
    """The operations of the table's commits, oldest first, without the empty-table create
    a first load starts with."""
    from deltalake import DeltaTable

    path = str(lake / "bronze" / table)
    if not DeltaTable.is_deltatable(path):
        return []
    history = reversed(DeltaTable(path).history())
    return [entry["operation"] for entry in history if entry["operation"] != "CREATE TABLE"]


def bronze_holds_each_row_once(lake: Path, table: str = "bronze_tx", rows: int = ROWS) -> None:
    bronze = pl.read_delta(str(lake / "bronze" / table))
    assert bronze.height == rows
    assert bronze["id"].n_unique() == rows
    assert set(bronze["_source_row"].to_list()) == set(range(1, rows + 1))
    assert bronze["_execution_id"].n_unique() == 1


def test_a_whole_worker_killed_mid_job_is_found_lost_and_retried(cluster):
    cluster.workers.start("events")
    victim = cluster.workers.start("ingest")
    big_csv(cluster.dir / "landing" / "tx.csv", ROWS)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:1])
    execution_id = start_run(cluster.client, workflow_id)
    reading(cluster.client, execution_id)

    Workers.kill_whole(victim)  # main process and pool: no one is left to requeue the task
    cluster.workers.start("ingest")

    execution = settled(cluster.client, execution_id)
    assert execution["status"] == "succeeded", execution
    job = execution["jobs"][0]
    assert job["attempt"] == 2
    assert job["note"].startswith("worker lost (its worker worker@")
    assert job["note"].endswith("retrying (attempt 2)")
    assert job["rowsWritten"] == ROWS and job["rowsRead"] == ROWS
    bronze_holds_each_row_once(cluster.dir / "lake")
    assert data_commits(cluster.dir / "lake") == ["WRITE"]
    no_active_execution(cluster.client)


def test_a_frozen_worker_is_replaced_and_its_late_work_changes_nothing(cluster):
    cluster.workers.start("events")
    frozen = cluster.workers.start("ingest")
    big_csv(cluster.dir / "landing" / "tx.csv", ROWS)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:1])
    execution_id = start_run(cluster.client, workflow_id)
    reading(cluster.client, execution_id)

    os.killpg(frozen.pid, signal.SIGSTOP)  # alive but silent: cut off from everyone
    try:
        cluster.workers.start("ingest")
        execution = settled(cluster.client, execution_id)
        assert execution["status"] == "succeeded", execution
        job = execution["jobs"][0]
        assert job["attempt"] == 2 and "no heartbeat from worker@" in job["note"]
        assert job["rowsWritten"] == ROWS
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)
    # The frozen attempt resumes, reaches its commit and finds the run already applied.
    wait_for(
        lambda: "run_job" in (log := frozen.log_path.read_text()) and " succeeded in " in log,
        120,
        0.2,
        "the resumed attempt to finish",
    )
    execution = cluster.client.get(f"/api/executions/{execution_id}").json()
    assert execution["status"] == "succeeded" and execution["jobs"][0]["attempt"] == 2
    bronze_holds_each_row_once(cluster.dir / "lake")
    assert data_commits(cluster.dir / "lake") == ["WRITE"]
    no_active_execution(cluster.client)


def test_the_embedded_server_killed_mid_run_settles_it_when_restarted(tmp_path):
    server = Server(tmp_path).start()
    try:
        big_csv(tmp_path / "landing" / "tx.csv", ROWS)
        with server.client() as client:
            workflow_id = create_workflow(client, workflow_jobs())
            execution_id = start_run(client, workflow_id)
            reading(client, execution_id)
        server.kill()
        server.start()
        with server.client() as client:
            execution = settled(client, execution_id)
            assert execution["status"] == "succeeded", execution
            ingest, silver, gold = execution["jobs"]
            assert ingest["attempt"] == 2 and "has stopped" in ingest["note"]
            assert [ingest["rowsWritten"], silver["attempt"], gold["attempt"]] == [ROWS, 1, 1]
            no_active_execution(client)
    finally:
        server.stop()
    bronze_holds_each_row_once(tmp_path / "lake")
    assert data_commits(tmp_path / "lake") == ["WRITE"]
    silver = pl.read_delta(str(tmp_path / "lake" / "silver" / "silver_tx"))
    assert silver.height == ROWS and silver["id"].n_unique() == ROWS


def outbox_holds(directory: Path, kind: str) -> bool:
    return directory.is_dir() and any(
        f'"eventType": "{kind}"' in path.read_text() for path in directory.glob("*.json")
    )


def test_a_broker_outage_delays_the_reports_and_loses_none(cluster):
    cluster.workers.start("events")
    cluster.workers.start("ingest")
    cluster.workers.start("transform")
    big_csv(cluster.dir / "landing" / "tx.csv", ROWS)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:2])  # bronze, then silver
    execution_id = start_run(cluster.client, workflow_id)
    reading(cluster.client, execution_id)

    cluster.redis.kill()
    # The ingest job finishes during the outage: its report waits in the worker's outbox.
    outbox = cluster.dir / "outbox"
    wait_for(lambda: outbox_holds(outbox, "COMPLETE"), 120, 0.2, "the COMPLETE in the outbox")
    time.sleep(2)
    cluster.redis.start()  # empty: whatever it held is gone

    execution = settled(cluster.client, execution_id, timeout=180)
    assert execution["status"] == "succeeded", execution
    assert [job["rowsWritten"] for job in execution["jobs"]] == [ROWS, ROWS]
    assert not list(outbox.glob("*.json"))
    bronze_holds_each_row_once(cluster.dir / "lake")
    silver = pl.read_delta(str(cluster.dir / "lake" / "silver" / "silver_tx"))
    assert silver.height == ROWS
    no_active_execution(cluster.client)


def test_a_failure_reported_during_an_outage_still_fails_the_run(cluster):
    cluster.workers.start("events")
    cluster.workers.start("ingest")
    path = cluster.dir / "landing" / "tx.csv"
    big_csv(path, ROWS)
    with open(path, "a") as handle:
        handle.write("not-a-number,1,2.00,2024-01-01 00:00:00\n")  # the last row is bad
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:2])
    execution_id = start_run(cluster.client, workflow_id)
    reading(cluster.client, execution_id)

    cluster.redis.kill()
    outbox = cluster.dir / "outbox"
    wait_for(lambda: outbox_holds(outbox, "FAIL"), 120, 0.2, "the FAIL in the outbox")
    cluster.redis.start()

    execution = settled(cluster.client, execution_id, timeout=180)
    assert execution["status"] == "failed"
    ingest, silver = execution["jobs"]
    assert ingest["status"] == "failed" and "not-a-number" in ingest["error"]["message"]
    assert silver["status"] == "skipped"
    assert [ingest["rowsWritten"], silver["rowsWritten"]] == [0, 0]
    assert data_commits(cluster.dir / "lake") == []
    no_active_execution(cluster.client)


def test_a_run_asked_for_while_the_broker_is_down_is_sent_when_it_is_back(cluster):
    cluster.workers.start("events")
    cluster.workers.start("ingest")
    big_csv(cluster.dir / "landing" / "tx.csv", 50_000)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:1])
    cluster.redis.kill()
    execution_id = start_run(cluster.client, workflow_id)  # accepted, not a 500
    queued = cluster.client.get(f"/api/executions/{execution_id}").json()
    assert queued["status"] == "queued" and queued["jobs"][0]["status"] == "queued"
    time.sleep(3)
    cluster.redis.start()

    execution = settled(cluster.client, execution_id, timeout=120)
    assert execution["status"] == "succeeded", execution
    assert execution["jobs"][0]["attempt"] == 1  # the same attempt, sent late
    bronze_holds_each_row_once(cluster.dir / "lake", rows=50_000)
    no_active_execution(cluster.client)


def test_a_queued_task_forgotten_by_a_restarted_broker_is_queued_again(cluster):
    cluster.workers.start("events")
    big_csv(cluster.dir / "landing" / "tx.csv", 50_000)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:1])
    execution_id = start_run(cluster.client, workflow_id)  # no ingest worker yet: it waits
    wait_for(
        lambda: (
            cluster.client.get(f"/api/executions/{execution_id}").json()["jobs"][0]["status"]
            == "queued"
        ),
        what="the job to be queued",
    )
    cluster.redis.kill()
    cluster.redis.start()  # the queue is gone with it
    cluster.workers.start("ingest")

    execution = settled(cluster.client, execution_id, timeout=120)
    assert execution["status"] == "succeeded", execution
    job = execution["jobs"][0]
    assert job["attempt"] == 2 and "broker restarted" in job["note"]
    bronze_holds_each_row_once(cluster.dir / "lake", rows=50_000)
    no_active_execution(cluster.client)


def test_a_cancel_stops_a_live_worker_and_commits_nothing(cluster):
    cluster.workers.start("events")
    cluster.workers.start("ingest")
    big_csv(cluster.dir / "landing" / "tx.csv", ROWS)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:2])
    execution_id = start_run(cluster.client, workflow_id)
    reading(cluster.client, execution_id)
    cancelled = cluster.client.post(f"/api/executions/{execution_id}/cancel").json()
    assert cancelled["status"] == "cancelling"
    execution = settled(cluster.client, execution_id)
    assert execution["status"] == "cancelled"
    assert [job["status"] for job in execution["jobs"]] == ["cancelled", "cancelled"]
    assert [job["rowsWritten"] for job in execution["jobs"]] == [0, 0]
    assert data_commits(cluster.dir / "lake") == []
    no_active_execution(cluster.client)


def test_a_cancel_whose_worker_is_gone_still_ends(cluster):
    cluster.workers.start("events")
    victim = cluster.workers.start("ingest")
    big_csv(cluster.dir / "landing" / "tx.csv", ROWS)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:1])
    execution_id = start_run(cluster.client, workflow_id)
    reading(cluster.client, execution_id)
    os.killpg(victim.pid, signal.SIGSTOP)  # it can neither stop nor say anything
    try:
        response = cluster.client.post(f"/api/executions/{execution_id}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelling"
        execution = settled(cluster.client, execution_id)
    finally:
        Workers.kill_whole(victim)
    assert execution["status"] == "cancelled"
    job = execution["jobs"][0]
    assert job["status"] == "cancelled" and job["rowsWritten"] == 0
    assert "worker lost while stopping" in job["note"]
    assert data_commits(cluster.dir / "lake") == []
    no_active_execution(cluster.client)

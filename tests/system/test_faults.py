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


class Cluster:
    """PostgreSQL catalog, a Redis of its own, `flowforge serve` as the API (it only
    dispatches), and `flowforge worker` processes."""

    def __init__(self, tmp_path: Path, postgres_url: str, **env: str) -> None:
        self.dir = tmp_path
        self.redis = RedisServer(tmp_path).start()
        settings = {
            "FLOWFORGE_DATABASE_URL": postgres_url,
            "FLOWFORGE_BROKER_URL": self.redis.url,
            "FLOWFORGE_AUTO_MIGRATE": "true",
            **env,
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


def run_until_reading(cluster: Cluster, jobs: int = 1, *, transform: bool = False):
    """An events and an ingest worker (and a transform one), a workflow of the first ``jobs``
    of the three-layer workflow over a CSV of ROWS rows (already in the landing area, or
    made), a run started and inside its read. Returns (the ingest worker, execution id)."""
    cluster.workers.start("events")
    ingest = cluster.workers.start("ingest")
    if transform:
        cluster.workers.start("transform")
    path = cluster.dir / "landing" / "tx.csv"
    if not path.exists():
        big_csv(path, ROWS)
    workflow_id = create_workflow(cluster.client, workflow_jobs()[:jobs])
    execution_id = start_run(cluster.client, workflow_id)
    reading(cluster.client, execution_id)
    return ingest, execution_id


def bronze_holds_each_row_once(lake: Path, table: str = "bronze_tx", rows: int = ROWS) -> None:
    bronze = pl.read_delta(str(lake / "bronze" / table))
    assert bronze.height == rows
    assert bronze["id"].n_unique() == rows
    assert set(bronze["_source_row"].to_list()) == set(range(1, rows + 1))
    assert bronze["_execution_id"].n_unique() == 1


def test_a_whole_worker_killed_mid_job_is_found_lost_and_retried(cluster):
    victim, execution_id = run_until_reading(cluster)

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
    frozen, execution_id = run_until_reading(cluster)

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
    _, execution_id = run_until_reading(cluster, 2, transform=True)  # bronze, then silver

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


def _connections(database: str, *, allowed: bool) -> None:
    """Let no one connect to ``database`` (and end every session it has), or let them again:
    to the orchestrator an outage of its database, as a server restart would be."""
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def test_a_run_event_met_by_a_database_outage_is_recorded_once_it_is_back(
    tmp_path, fresh_postgres_url
):
    """The ingest job finishes while the orchestrator's database takes no connection: its
    COMPLETE cannot be recorded. It is tried again until the database is back, then the
    silver job starts: the run succeeds with each job run once (attempt 1), not after the
    reaper gave the COMPLETE up for lost (a heartbeat timeout of 60 s, the default, here)
    and ran the job again."""
    database = fresh_postgres_url.rsplit("/", 1)[1]
    cluster = Cluster(tmp_path, fresh_postgres_url, FLOWFORGE_HEARTBEAT_TIMEOUT="60")
    try:
        _outage_during_a_complete(cluster, database)
    finally:
        cluster.stop()


def _outage_during_a_complete(cluster: Cluster, database: str) -> None:
    _, execution_id = run_until_reading(cluster, 2, transform=True)  # bronze, then silver
    _connections(database, allowed=False)
    try:
        lake = cluster.dir / "lake"
        wait_for(lambda: data_commits(lake), 120, 0.2, "the bronze write during the outage")
        time.sleep(4)  # the COMPLETE is sent, refused by the database, and sent again
    finally:
        _connections(database, allowed=True)

    started = time.monotonic()
    execution = settled(cluster.client, execution_id, timeout=120)
    assert execution["status"] == "succeeded", execution
    assert time.monotonic() - started < 40, "the run waited for the reaper"
    assert [job["attempt"] for job in execution["jobs"]] == [1, 1]
    assert [job["rowsWritten"] for job in execution["jobs"]] == [ROWS, ROWS]
    assert data_commits(lake) == ["WRITE"]
    bronze_holds_each_row_once(lake)
    silver = pl.read_delta(str(lake / "silver" / "silver_tx"))
    assert silver.height == ROWS
    no_active_execution(cluster.client)


def test_a_failure_reported_during_an_outage_still_fails_the_run(cluster):
    path = cluster.dir / "landing" / "tx.csv"
    big_csv(path, ROWS)
    with open(path, "a") as handle:
        handle.write("not-a-number,1,2.00,2024-01-01 00:00:00\n")  # the last row is bad
    _, execution_id = run_until_reading(cluster, 2)

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
    _, execution_id = run_until_reading(cluster, 2)
    cancelled = cluster.client.post(f"/api/executions/{execution_id}/cancel").json()
    assert cancelled["status"] == "cancelling"
    execution = settled(cluster.client, execution_id)
    assert execution["status"] == "cancelled"
    assert [job["status"] for job in execution["jobs"]] == ["cancelled", "cancelled"]
    assert [job["rowsWritten"] for job in execution["jobs"]] == [0, 0]
    assert data_commits(cluster.dir / "lake") == []
    no_active_execution(cluster.client)


def test_a_cancel_whose_worker_is_gone_still_ends(cluster):
    victim, execution_id = run_until_reading(cluster)
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


def test_a_cancelled_job_still_in_the_queue_is_revoked_and_never_starts(
    cluster, fresh_postgres_url
):
    """The only ingest slot is busy, so a second run's job waits in the broker's queue; its
    cancel revokes the task (its id is the job run id) and the worker discards it when it
    comes to it: the job never starts (no START event), it is not merely aborted."""
    import redis
    import sqlalchemy as sa

    busy, first = run_until_reading(cluster)
    small = cluster.dir / "landing" / "small.csv"
    small.write_text("id,customer_id,amount,updated_at\n1,1,1.25,2024-01-01 00:00:00\n")
    [job] = workflow_jobs("small.csv")[:1]
    job["destinationConfig"] = {"bronzeConfig": {"tableName": "bronze_small"}}
    second = start_run(cluster.client, create_workflow(cluster.client, [job]))
    queue = redis.Redis.from_url(cluster.redis.url)
    wait_for(lambda: queue.llen("ingest") == 1, 60, 0.05, "the second job to wait in the queue")
    job_run_id = cluster.client.get(f"/api/executions/{second}").json()["jobs"][0]["jobRunId"]

    cancelled = cluster.client.post(f"/api/executions/{second}/cancel").json()
    assert cancelled["status"] == "cancelled"  # nothing of it had started
    cluster.client.post(f"/api/executions/{first}/cancel")  # frees the worker's only slot
    assert settled(cluster.client, first)["status"] == "cancelled"

    discarded = f"Discarding revoked task: flowforge.ingest.run_job[{job_run_id}]"
    wait_for(lambda: discarded in busy.log_path.read_text(), 60, 0.1, "the task to be discarded")
    assert queue.llen("ingest") == 0
    time.sleep(1)  # an event the worker would have sent has had time to be recorded
    assert f"[{job_run_id}] succeeded" not in busy.log_path.read_text()
    engine = sa.create_engine(fresh_postgres_url)
    try:
        with engine.connect() as connection:
            events = connection.execute(
                sa.text("SELECT count(*) FROM run_events WHERE job_run_id = :id"),
                {"id": job_run_id},
            ).scalar_one()
    finally:
        engine.dispose()
    assert events == 0  # not even a START: it never ran
    execution = cluster.client.get(f"/api/executions/{second}").json()
    assert execution["status"] == "cancelled"
    assert execution["jobs"][0]["status"] == "cancelled"
    no_active_execution(cluster.client)

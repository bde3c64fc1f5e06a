"""The run engine as it scales out: PostgreSQL catalog, Redis broker, and `flowforge worker`
processes for the events, ingest and transform queues."""

import hashlib
import os
import signal
import time
from pathlib import Path

import polars as pl
import pytest

from tests.system.conftest import expected_from_csv, workflow_jobs, write_transactions
from tests.system.test_embedded_run import assert_tables_match_csv

pytestmark = pytest.mark.redis


def start_cluster(platform, ingest_workers: int = 1):
    cluster = platform.cluster
    cluster.start_worker("events")
    for _ in range(ingest_workers):
        cluster.start_worker("ingest")
    cluster.start_worker("transform")
    cluster.wait_ready()


def test_three_layer_workflow_runs_on_separate_worker_processes(celery_platform):
    start_cluster(celery_platform)
    write_transactions(celery_platform.landing / "tx.csv", 2_000)
    workflow = celery_platform.create_workflow(workflow_jobs())
    execution = celery_platform.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    assert [job["attempt"] for job in execution["jobs"]] == [1, 1, 1]
    assert_tables_match_csv(celery_platform, [celery_platform.landing / "tx.csv"])

    silver_before = celery_platform.read("silver", "silver_tx").drop("_ingested_at").sort("id")
    gold_before = celery_platform.read("gold", "gold_customer_totals").sort("customer_id")
    assert celery_platform.run(workflow["id"])["status"] == "succeeded"
    assert (
        celery_platform.read("silver", "silver_tx")
        .drop("_ingested_at")
        .sort("id")
        .equals(silver_before)
    )
    assert (
        celery_platform.read("gold", "gold_customer_totals").sort("customer_id").equals(gold_before)
    )


def test_a_second_copy_of_a_sent_attempt_is_dropped_by_the_worker(celery_platform, tmp_path):
    """The orchestrator sends an attempt again when it has no record of the first send (its
    process died between the send and the mark, and no START came within the grace). A
    worker that gets that second copy after the first drops it: the job ran once."""
    from sqlalchemy import func, select

    from flowforge_orchestrator import dispatch
    from flowforge_orchestrator.runs import service
    from flowforge_orchestrator.runs.models import RunEvent
    from flowforge_runtime.worker import ATTEMPT_KEY

    start_cluster(celery_platform)
    write_transactions(celery_platform.landing / "tx.csv", 200)
    workflow = celery_platform.create_workflow(workflow_jobs())
    execution = celery_platform.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    gold = execution["jobs"][-1]
    app = celery_platform.client.app
    database = app.state.database
    with database.session() as session:
        record = service.get_or_raise(session, execution_id=execution["id"])
        job = next(job for job in record.jobs if job.id == gold["jobRunId"])
        task, queue = service.task_for(session, record, job), job.queue
    runtime = dispatch.CeleryRuntime(app.state.settings)
    assert runtime.send([task], {task.job_run_id: queue})[0] == [task.job_run_id]

    log = next(tmp_path.glob("worker-transform-*.log"))
    deadline = time.monotonic() + 60
    while "another copy of this dispatch reached a worker first" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    assert int(celery_platform.redis.get(ATTEMPT_KEY.format(job_run_id=task.job_run_id))) == 1
    with database.session() as session:
        starts = session.scalar(
            select(func.count())
            .select_from(RunEvent)
            .where(RunEvent.job_run_id == task.job_run_id, RunEvent.event_type == "START")
        )
    assert starts == 1
    again = celery_platform.execution(execution["id"])
    assert again["status"] == "succeeded"
    assert again["jobs"][-1]["attempt"] == 1


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.extend(int(child) for child in children)
    return found


def big_csv(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = pl.int_range(1, rows + 1, eager=True)
    pl.DataFrame({"id": ids}).with_columns(
        customer_id=pl.col("id") % 97,
        amount=(pl.col("id") % 10_000).cast(pl.Utf8) + ".25",
        updated_at=pl.lit("2024-01-01 00:00:00"),
    ).write_csv(path)


def test_worker_killed_mid_job_is_redelivered_without_duplicates_or_losses(celery_platform):
    rows = 3_000_000
    start_cluster(celery_platform, ingest_workers=2)
    big_csv(celery_platform.landing / "tx.csv", rows)
    workflow = celery_platform.create_workflow(workflow_jobs()[:1])
    execution_id = celery_platform.start(workflow["id"])

    # Wait until a worker is inside the job (a batch has gone through), then SIGKILL the
    # process running it.
    deadline = time.monotonic() + 120
    while True:
        job = celery_platform.execution(execution_id)["jobs"][0]
        if job["status"] == "running" and job["rowsRead"] > 0:
            break
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    assert job["rowsRead"] < rows, "the job finished before it could be interrupted"
    # Every ingest pool process dies (the idle ones are respawned, the busy one's task is
    # rejected and requeued by reject_on_worker_lost).
    pool = [
        child
        for queue, process in celery_platform.cluster.processes
        if queue == "ingest"
        for child in children_of(process.pid)
    ]
    assert pool, "no ingest pool process found"
    for pid in pool:
        os.kill(pid, signal.SIGKILL)

    execution = celery_platform.wait(execution_id, timeout=240)
    assert execution["status"] == "succeeded", execution
    ingest = execution["jobs"][0]
    assert ingest["attempt"] >= 2
    bronze = celery_platform.read("bronze", "bronze_tx")
    assert bronze.height == rows
    assert bronze["id"].n_unique() == rows
    assert bronze["_source_row"].n_unique() == rows


def test_failure_reported_by_a_worker_skips_downstream(celery_platform):
    start_cluster(celery_platform)
    (celery_platform.landing / "tx.csv").write_text("id,customer_id,amount,updated_at\n1,2\n")
    workflow = celery_platform.create_workflow(workflow_jobs())
    execution = celery_platform.run(workflow["id"])
    assert execution["status"] == "failed"
    assert [job["status"] for job in execution["jobs"]] == ["failed", "skipped", "skipped"]
    assert "tx.csv" in execution["jobs"][0]["error"]["message"]


def test_postgres_and_s3_embedded_tasks(tmp_path, fresh_postgres_url, moto_s3):
    """The same workflow with the catalog on PostgreSQL and the lake on S3 (moto server)."""
    from fastapi.testclient import TestClient

    from flowforge.app import create_app
    from tests.conftest import make_settings
    from tests.system.conftest import Platform

    settings = make_settings(
        tmp_path,
        fresh_postgres_url,
        storage_url=f"s3://{moto_s3['bucket']}/lake-{tmp_path.name}",
        s3_endpoint_url=moto_s3["endpoint"],
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_allow_http=True,
    )
    local = tmp_path / "tx.csv"
    write_transactions(local, 700)
    prefix = settings.lake_root.removeprefix(f"s3://{moto_s3['bucket']}/")
    moto_s3["client"].upload_file(str(local), moto_s3["bucket"], f"{prefix}/landing/tx.csv")
    app = create_app(settings)
    with TestClient(app) as client:
        platform = Platform(client, settings.lake_root, settings.storage_options)
        workflow = platform.create_workflow(workflow_jobs())
        execution = platform.run(workflow["id"])
        assert execution["status"] == "succeeded", execution
        assert_tables_match_csv(platform, [local])
        # The digest the worker computed while streaming the object from S3.
        read = [entry for job in execution["jobs"] for entry in job["inputs"]]
        assert [(entry["sha256"], entry["size"]) for entry in read] == [
            (hashlib.sha256(local.read_bytes()).hexdigest(), local.stat().st_size)
        ]
        listed = moto_s3["client"].list_objects_v2(
            Bucket=moto_s3["bucket"], Prefix=f"{prefix}/silver/silver_tx/_delta_log/"
        )
        assert listed["KeyCount"] >= 1
        second = platform.run(workflow["id"])
        assert second["status"] == "succeeded"
        silver, _ = expected_from_csv([local])
        assert platform.read("silver", "silver_tx").height == len(silver)
    app.state.database.dispose()


def test_the_catalog_takes_a_runs_tables_from_its_queue_and_catches_up(celery_platform):
    """The orchestrator passes each job's COMPLETE event on to the catalog's queue: with no
    catalog worker the run still succeeds and its tables wait there; a catalog worker
    started afterwards records each of them at the table's real version and row count."""
    start_cluster(celery_platform)
    write_transactions(celery_platform.landing / "tx.csv", 500)
    workflow = celery_platform.create_workflow(workflow_jobs())
    execution = celery_platform.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    tables = {"bronze_tx", "silver_tx", "gold_customer_totals"}

    def assets() -> dict[str, dict]:
        page = celery_platform.client.get("/api/catalog/assets", headers=celery_platform.headers)
        assert page.status_code == 200, page.text
        return {a["table"]: a for a in page.json()["data"] if a["table"] in tables}

    assert assets() == {}  # nobody has taken the catalog's messages yet
    celery_platform.cluster.start_worker("catalog")
    deadline = time.monotonic() + 60
    while set(assets()) != tables:
        assert time.monotonic() < deadline, f"the catalog has {sorted(assets())}"
        time.sleep(0.3)
    from deltalake import DeltaTable

    layers = {"bronze_tx": "bronze", "silver_tx": "silver", "gold_customer_totals": "gold"}
    for table, asset in assets().items():
        delta = DeltaTable(f"{celery_platform.lake_root}/{layers[table]}/{table}")
        assert asset["layer"] == layers[table]
        assert asset["producingExecutionId"] == execution["id"]
        # the job's own write; automatic maintenance may have committed after it
        assert asset["version"] <= delta.version()
        assert asset["rowCount"] == celery_platform.read(layers[table], table).height

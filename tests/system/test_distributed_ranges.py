"""Distributed parallel reads on real processes (docs/connectors.md, "Distributed"): a
PostgreSQL catalog, a Redis server of the test's own, `flowforge worker ingest` processes
and a PostgreSQL source table read in 4 key ranges as ``flowforge.ingest.read_range`` tasks,
committed into bronze once."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.ingest.test_parallel_read_live import Postgres
from tests.system.test_celery_run import children_of

pytestmark = pytest.mark.redis

ROWS = 200_000
CLAIM_TTL = "3"


@pytest.fixture(scope="module")
def source():
    server = Postgres()
    server.run("CREATE TABLE items (id int PRIMARY KEY, v int, pad text)")
    server.run(
        f"INSERT INTO items SELECT g, g % 97, md5(g::text) FROM generate_series(1, {ROWS}) g"
    )
    # the same rows, slowly: a short sleep every 2,500 rows, so a range takes seconds
    server.run(
        "CREATE VIEW slow_items AS SELECT id, v, pad, CASE WHEN id % 2500 = 0 THEN "
        "(SELECT 1 FROM pg_sleep(0.15)) ELSE 1 END AS tick FROM items"
    )
    server.run("CREATE TABLE bad (id int PRIMARY KEY, at timestamp)")
    server.run("INSERT INTO bad SELECT g, '2024-01-01'::timestamp FROM generate_series(1, 4000) g")
    server.run("UPDATE bad SET at = 'infinity' WHERE id = 2500")
    yield server
    server.drop()


def start(platform, ingest: int, concurrency: int = 1) -> list:
    platform.cluster.env["FLOWFORGE_RANGE_CLAIM_TTL"] = CLAIM_TTL
    platform.cluster.start_worker("events")
    workers = [platform.cluster.start_worker("ingest", concurrency) for _ in range(ingest)]
    platform.cluster.wait_ready()
    return workers


def database_workflow(platform, source, config: dict, table: str) -> dict:
    response = platform.client.post(
        "/api/connections",
        json={
            "name": f"src-{table}",
            "type": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "database": source.name,
            "username": "postgres",
        },
        headers=platform.headers,
    )
    assert response.status_code == 201, response.text
    return platform.create_workflow(
        [
            {
                "name": f"load {table}",
                "type": "database",
                "sourceConfig": {
                    "type": "postgresql",
                    "databaseConfig": {"connectionId": response.json()["id"], **config},
                },
                "destinationConfig": {"bronzeConfig": {"tableName": table}},
            }
        ]
    )


def bronze(platform, table: str) -> DeltaTable:
    return DeltaTable(f"{platform.lake_root}/bronze/{table}")


def writes(platform, table: str) -> list[dict]:
    return [e for e in bronze(platform, table).history() if e.get("operation") == "WRITE"]


def ids(platform, table: str) -> Counter:
    return Counter(bronze(platform, table).to_pyarrow_table(columns=["id"]).column(0).to_pylist())


def worker_log(platform, process) -> str:
    index = [p for _, p in platform.cluster.processes].index(process)
    queue = platform.cluster.processes[index][0]
    return (platform.cluster.logs / f"worker-{queue}-{index}.log").read_text()


def range_results(platform) -> list[str]:
    """What each read_range task returned, from the ingest workers' logs."""
    found = []
    for queue, process in platform.cluster.processes:
        if queue != "ingest":
            continue
        for line in worker_log(platform, process).splitlines():
            if "flowforge.ingest.read_range[" in line and "succeeded" in line:
                found.append(line.rsplit(":", 1)[-1].strip().strip("'"))
    return found


def test_four_ranges_on_two_workers_land_once_in_one_commit(celery_platform, source):
    start(celery_platform, ingest=2)
    config = {"tableName": "items", "partitions": 4, "isIncremental": True, "deltaColumn": "id"}
    workflow = database_workflow(celery_platform, source, config, "b_items")
    execution = celery_platform.run(workflow["id"], timeout=180)
    job = execution["jobs"][0]
    assert execution["status"] == "succeeded", execution
    assert (
        "read in 4 key ranges of id as tasks of the ingest workers, committed once" in (job["note"])
    )
    assert ids(celery_platform, "b_items") == Counter(range(1, ROWS + 1))
    assert job["rowsWritten"] == ROWS
    assert len(writes(celery_platform, "b_items")) == 1
    watermark = celery_platform.client.get(
        f"/api/workflows/{workflow['id']}/jobs/{job['jobId']}/watermark",
        headers=celery_platform.headers,
    ).json()
    assert watermark["watermark"]["value"] == str(ROWS)
    # the other worker read ranges as tasks
    deadline = time.monotonic() + 30
    while len(range_results(celery_platform)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "staged" in range_results(celery_platform)
    # the staged logs are gone; bronze's files stay
    folder = Path(celery_platform.lake_root) / "bronze" / "b_items"
    assert not list(folder.glob("flowforge-ranges/*/*/_delta_log"))

    # a second run, nothing new: the watermark stays, nothing loaded twice
    again = celery_platform.run(workflow["id"], timeout=180)
    assert again["status"] == "succeeded", again
    assert ids(celery_platform, "b_items") == Counter(range(1, ROWS + 1))


def test_one_worker_of_concurrency_one_the_job_reads_every_range_itself(celery_platform, source):
    start(celery_platform, ingest=1, concurrency=1)
    workflow = database_workflow(
        celery_platform, source, {"tableName": "items", "partitions": 4}, "b_alone"
    )
    execution = celery_platform.run(workflow["id"], timeout=180)
    assert execution["status"] == "succeeded", execution
    assert ids(celery_platform, "b_alone") == Counter(range(1, ROWS + 1))
    assert len(writes(celery_platform, "b_alone")) == 1
    # the range tasks ran only after the job (its slot was the only one): nothing to do
    deadline = time.monotonic() + 30
    while len(range_results(celery_platform)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert range_results(celery_platform) == ["not needed"] * 3


def test_a_range_worker_killed_mid_range_is_redelivered_one_commit_every_row_once(
    celery_platform, source
):
    import redis

    workers = start(celery_platform, ingest=2)
    workflow = database_workflow(
        celery_platform,
        source,
        {"tableName": "slow_items", "partitions": 4, "partitionColumn": "id"},
        "b_killed",
    )
    execution_id = celery_platform.start(workflow["id"])
    broker = redis.Redis.from_url(celery_platform.cluster.env["FLOWFORGE_BROKER_URL"])

    # a range claimed by a task (not the job) and reading: kill that worker's pool process
    deadline = time.monotonic() + 120
    holder_key = None
    while holder_key is None:
        for key in broker.scan_iter(f"flowforge:range:{execution_id}:*"):
            tail = key.decode().rsplit(":", 1)[-1]
            if tail.isdigit() and (broker.get(key) or b"").startswith(b"task:"):
                holder_key = key
        assert time.monotonic() < deadline, "no range task claimed a range"
        time.sleep(0.05)
    time.sleep(0.5)  # mid-range
    task_id = broker.get(holder_key).decode().removeprefix("task:")
    index = holder_key.decode().rsplit(":", 1)[-1]
    results = holder_key.decode().rsplit(":", 1)[0] + ":results"
    assert broker.hget(results, index) is None, "the range had finished already"
    # the worker that took the claiming task's message (not picked by "the other one than
    # the job's": a second copy of the job's dispatch, dropped, would show in both logs)
    range_worker = next(
        w for w in workers if f"read_range[{task_id}] received" in worker_log(celery_platform, w)
    )
    pool = children_of(range_worker.pid)
    assert pool, "no pool process of the range worker"
    for pid in pool:
        os.kill(pid, signal.SIGKILL)

    execution = celery_platform.wait(execution_id, timeout=240)
    assert execution["status"] == "succeeded", execution
    assert ids(celery_platform, "b_killed") == Counter(range(1, ROWS + 1))
    assert len(writes(celery_platform, "b_killed")) == 1
    # The pool process died with the task. Its worker may notice seconds later (seen in CI:
    # 4 s, after the job had taken the range over when its claim expired and committed).
    deadline = time.monotonic() + 60
    while "signal 9" not in worker_log(celery_platform, range_worker):
        assert time.monotonic() < deadline, worker_log(celery_platform, range_worker)[-2000:]
        time.sleep(0.2)
    # the killed task's message came back (reject on worker lost) and ran to its end, on
    # whichever worker took it again (after the commit: "not needed")

    def ran_again() -> bool:
        return any(
            f"read_range[{task_id}] succeeded" in worker_log(celery_platform, w) for w in workers
        )

    deadline = time.monotonic() + 60
    while not ran_again():
        assert time.monotonic() < deadline, [
            worker_log(celery_platform, w)[-2000:] for w in workers
        ]
        time.sleep(0.2)


def test_a_range_with_a_value_that_cannot_be_stored_fails_the_job_bronze_unchanged(
    celery_platform, source
):
    start(celery_platform, ingest=2)
    bad = database_workflow(
        celery_platform,
        source,
        {"tableName": "bad", "partitions": 4, "batchSize": 500},
        "b_bad",
    )
    execution = celery_platform.run(bad["id"], timeout=180)
    assert execution["status"] == "failed", execution
    message = execution["jobs"][0]["error"]["message"]
    assert "cannot be stored" in message and "'at'" in message
    # the table may have been created (empty) before the read; no rows were committed
    table = Path(celery_platform.lake_root) / "bronze" / "b_bad"
    assert not (table / "_delta_log").exists() or not writes(celery_platform, "b_bad")

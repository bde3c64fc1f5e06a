"""The distributed mode of a parallel read (docs/connectors.md, "Distributed"), its plain
functions against the real PostgreSQL and Redis (DB 13) of this machine, without a broker:
the range "tasks" are :func:`run_range_task` calls on threads, as a worker would make them.
Real worker processes are in tests/system/test_distributed_ranges.py."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from deltalake import DeltaTable

from flowforge_ingest.distributed_read import RangeDispatch, run_range_task
from flowforge_ingest.range_claims import RangeClaims
from flowforge_ingest.runner import run_ingest_job
from flowforge_runtime.job import LocalCancelFlags
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import Lake
from flowforge_shared.settings import Settings
from tests.conftest import require_service
from tests.ingest.test_parallel_read_live import MariaDB, Postgres, job_context

ROWS = 40_000


@pytest.fixture(scope="module")
def source():
    require_service("Redis", "127.0.0.1", 6379)
    server = Postgres()
    server.run("CREATE TABLE items (id int PRIMARY KEY, v int, pad text)")
    server.run(
        f"INSERT INTO items SELECT g, g % 97, md5(g::text) FROM generate_series(1, {ROWS}) g"
    )
    # one value PostgreSQL allows and Arrow cannot hold, in the third of 4 ranges
    server.run("CREATE TABLE bad (id int PRIMARY KEY, at timestamp)")
    server.run("INSERT INTO bad SELECT g, '2024-01-01'::timestamp FROM generate_series(1, 4000) g")
    server.run("UPDATE bad SET at = 'infinity' WHERE id = 2500")
    yield server
    server.drop()


@pytest.fixture(scope="module")
def mariadb():
    require_service("Redis", "127.0.0.1", 6379)
    server = MariaDB()
    server.run("CREATE TABLE items (id INT PRIMARY KEY, v INT, pad CHAR(32))")
    server.run(f"INSERT INTO items SELECT seq, seq % 97, md5(seq) FROM seq_1_to_{ROWS}")
    yield server
    server.drop()


@pytest.fixture
def client():
    return redis.Redis.from_url("redis://127.0.0.1:6379/13")


class Workers:
    """Range tasks run on threads, each as a worker's task would run one message."""

    def __init__(self, tmp_path: Path, client, *, take=lambda index: True) -> None:
        self.tmp_path = tmp_path
        self.client = client
        self.take = take
        self.threads: list[threading.Thread] = []
        self.outcomes: dict[int, str] = {}

    def send(self, spec: dict, index: int) -> None:
        if not self.take(index):
            return
        claims = RangeClaims(
            self.client, spec["executionId"], spec["runSequence"], spec["attempt"], 2.0
        )

        def work():
            self.outcomes[index] = run_range_task(
                spec,
                index,
                f"task:{uuid.uuid4().hex}",
                lake=Lake(str(self.tmp_path / "lake")),
                settings=Settings(data_dir=self.tmp_path),
                claims=claims,
                cancelled=lambda: False,
            )

        thread = threading.Thread(target=work)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)


def run(tmp_path, server, config, *, dispatch, execution=None, sequence=1, watermark=None):
    context = job_context(
        tmp_path,
        server,
        config,
        bronze="b_items",
        execution=execution or str(uuid.uuid4()),
        sequence=sequence,
        watermark=watermark,
    )
    return run_ingest_job(context, dispatch=dispatch)


def bronze(tmp_path) -> DeltaTable:
    return DeltaTable(str(tmp_path / "lake" / "bronze" / "b_items"))


def writes(tmp_path) -> list[dict]:
    return [e for e in bronze(tmp_path).history() if e.get("operation") == "WRITE"]


def staged_logs(tmp_path) -> list[Path]:
    return list((tmp_path / "lake" / "bronze" / "b_items").glob("flowforge-ranges/*/*/_delta_log"))


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_ranges_read_by_tasks_land_once_in_one_commit(tmp_path, request, client, server):
    source = request.getfixturevalue("source" if server == "postgresql" else "mariadb")
    workers = Workers(tmp_path, client)
    dispatch = RangeDispatch(client=client, send=workers.send, claim_ttl=2.0, poll=0.05)
    outcome = run(tmp_path, source, {"tableName": "items", "partitions": 4}, dispatch=dispatch)
    workers.join()
    assert "read in 4 key ranges of id as tasks of the ingest workers, committed once" in (
        outcome.notes
    )
    ids = bronze(tmp_path).to_pyarrow_table(columns=["id"]).column(0).to_pylist()
    assert Counter(ids) == Counter(range(1, ROWS + 1))  # each row exactly once
    assert outcome.rows_written == ROWS and outcome.rows_read == ROWS
    assert len(writes(tmp_path)) == 1
    assert "staged" in workers.outcomes.values()  # the tasks did read ranges
    assert staged_logs(tmp_path) == []  # cleaned after the commit


def test_no_free_worker_the_coordinator_reads_every_range(tmp_path, source, client):
    sent = []
    dispatch = RangeDispatch(
        client=client, send=lambda spec, index: sent.append(index), claim_ttl=2.0, poll=0.05
    )
    outcome = run(tmp_path, source, {"tableName": "items", "partitions": 4}, dispatch=dispatch)
    assert sent == [1, 2, 3]  # sent, never taken
    ids = bronze(tmp_path).to_pyarrow_table(columns=["id"]).column(0).to_pylist()
    assert Counter(ids) == Counter(range(1, ROWS + 1))
    assert outcome.rows_written == ROWS and len(writes(tmp_path)) == 1


def test_a_range_whose_worker_died_is_taken_over_when_its_claim_expires(tmp_path, source, client):
    execution = str(uuid.uuid4())
    # range 2's task claimed it, then its worker died: no heartbeat refreshes the claim
    RangeClaims(client, execution, 1, 1, 1.0).claim(2, "task:dead")
    workers = Workers(tmp_path, client, take=lambda index: index != 2)
    dispatch = RangeDispatch(client=client, send=workers.send, claim_ttl=1.0, poll=0.05)
    started = time.monotonic()
    outcome = run(
        tmp_path,
        source,
        {"tableName": "items", "partitions": 4},
        dispatch=dispatch,
        execution=execution,
    )
    workers.join()
    ids = bronze(tmp_path).to_pyarrow_table(columns=["id"]).column(0).to_pylist()
    assert Counter(ids) == Counter(range(1, ROWS + 1))
    assert outcome.rows_written == ROWS and len(writes(tmp_path)) == 1
    assert time.monotonic() - started >= 0.5  # it waited for the claim to expire


def test_a_range_with_a_value_that_cannot_be_stored_fails_the_job_and_leaves_bronze(
    tmp_path, source, client
):
    workers = Workers(tmp_path, client)
    dispatch = RangeDispatch(client=client, send=workers.send, claim_ttl=2.0, poll=0.05)
    run(tmp_path, source, {"tableName": "items", "partitions": 2}, dispatch=dispatch)
    before = bronze(tmp_path).version()
    with pytest.raises(PermanentError, match="cannot be stored") as failure:
        task_config = {"tableName": "bad", "partitions": 4, "batchSize": 500}
        run(tmp_path, source, task_config, dispatch=dispatch, sequence=2)
    workers.join()
    assert "'at'" in str(failure.value)
    assert bronze(tmp_path).version() == before
    assert len(bronze(tmp_path).to_pyarrow_table(columns=["id"])) == ROWS


def test_an_incremental_read_advances_the_watermark_once_and_a_lookback_stays_threads(
    tmp_path, source, client
):
    workers = Workers(tmp_path, client)
    dispatch = RangeDispatch(client=client, send=workers.send, claim_ttl=2.0, poll=0.05)
    config = {"tableName": "items", "partitions": 4, "isIncremental": True, "deltaColumn": "id"}
    first = run(tmp_path, source, config, dispatch=dispatch)
    workers.join()
    assert first.watermark["value"] == str(ROWS)
    entry = writes(tmp_path)[0]
    assert '"value": "40000"' in entry["flowforge.watermark"]
    assert entry["flowforge.rows"] == str(ROWS)
    # the next run has a watermark and a key: what bronze holds is dropped, which only the
    # threaded read does (docs/connectors.md): it stays threads
    second = run(
        tmp_path,
        source,
        {**config, "uniqueKey": ["id"]},
        dispatch=dispatch,
        sequence=2,
        watermark=first.watermark,
    )
    assert "read in 4 key ranges of id in parallel, committed once" in second.notes
    assert second.rows_written == 0 and second.watermark["value"] == str(ROWS)


@pytest.mark.parametrize("how", ["cancelled", "time limit"])
def test_a_wait_ends_on_cancel_or_time_limit_commits_nothing_and_stops_the_ranges(
    tmp_path, source, client, how
):
    from flowforge_ingest.range_claims import ClaimKeeper
    from flowforge_runtime.job import Cancelled

    execution = str(uuid.uuid4())
    # range 2 is held by a live task that never finishes: the job waits for it
    claims = RangeClaims(client, execution, 1, 1, 1.0)
    assert claims.claim(2, "task:busy")
    flags = LocalCancelFlags()
    settings = Settings(data_dir=tmp_path, task_time_limit=2 if how == "time limit" else 3600)
    if how == "cancelled":
        threading.Timer(1.0, flags.cancel, args=[execution]).start()
    context = job_context(
        tmp_path,
        source,
        {"tableName": "items", "partitions": 4},
        bronze="b_items",
        execution=execution,
        settings=settings,
        cancel_flags=flags,
    )
    dispatch = RangeDispatch(client=client, send=lambda spec, index: None, claim_ttl=1.0, poll=0.05)
    expected = Cancelled if how == "cancelled" else PermanentError
    with ClaimKeeper(claims, 2, "task:busy"), pytest.raises(expected) as ended:
        run_ingest_job(context, dispatch=dispatch)
    if how == "time limit":
        assert "did not finish within the task time limit" in str(ended.value)
    assert writes(tmp_path) == []  # nothing committed (the table may exist, empty)
    assert claims.stopped()  # the range tasks stop at their next batch


def test_two_copies_of_the_coordinator_commit_once(tmp_path, source, client):
    """Two attempts of one run coordinating at once (a coordinator thought lost, and its
    retry): each stages its own ranges, one commit lands, the other reports it."""
    execution = str(uuid.uuid4())
    outcomes, errors = {}, []

    def coordinate(attempt: int) -> None:
        context = job_context(
            tmp_path,
            source,
            {"tableName": "items", "partitions": 4},
            bronze="b_items",
            execution=execution,
            attempt=attempt,
        )
        workers = Workers(tmp_path, client)
        dispatch = RangeDispatch(client=client, send=workers.send, claim_ttl=2.0, poll=0.05)
        try:
            outcomes[attempt] = run_ingest_job(context, dispatch=dispatch)
        except Exception as error:
            errors.append(error)
        workers.join()

    threads = [threading.Thread(target=coordinate, args=(attempt,)) for attempt in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(outcomes) == 2
    assert len(writes(tmp_path)) == 1
    ids = bronze(tmp_path).to_pyarrow_table(columns=["id"]).column(0).to_pylist()
    assert Counter(ids) == Counter(range(1, ROWS + 1))
    made = [o for o in outcomes.values() if o.already_applied is None]
    found = [o for o in outcomes.values() if o.already_applied is not None]
    assert len(made) == 1 and made[0].rows_written == ROWS
    assert len(found) == 1 and found[0].rows_written == ROWS  # the commit's flowforge.rows

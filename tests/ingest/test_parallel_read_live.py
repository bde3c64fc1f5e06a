"""Parallel reads (databaseConfig.partitions) against the real PostgreSQL and MariaDB of this
machine: a table read in key ranges on several connections lands every source row exactly
once in one bronze commit; a range that fails leaves bronze as it was and a retry lands
each row once; an incremental parallel read advances the watermark once.

Under CI=true a missing server fails the run instead of skipping it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from flowforge_ingest.connectors.sql import KeyRange
from flowforge_ingest.parallel_read import key_ranges
from flowforge_ingest.runner import run_ingest_job
from flowforge_runtime.job import JobContext, LocalCancelFlags
from flowforge_shared.contracts.tasks import JobTask
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import Lake
from flowforge_shared.settings import Settings
from tests.conftest import require_service

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


# === the two servers =========================================================================


class Postgres:
    db_type = "postgresql"

    def __init__(self) -> None:
        import psycopg

        require_service("PostgreSQL", "127.0.0.1", 5432)
        self.name = f"ff_parallel_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')

    def run(self, statement: str, params=None) -> list[tuple]:
        import psycopg

        dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={self.name}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def keys(self, table: str, column: str) -> list:
        return [row[0] for row in self.run(f"SELECT {column} FROM {table}")]  # noqa: S608

    def kill_reader(self, fragment: str) -> int:
        """Terminate the backend whose running statement holds ``fragment``, waiting (up to
        10 s) for that range's thread to have started it on a loaded machine."""
        import psycopg

        deadline = time.monotonic() + 10
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            while True:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND state = 'active' AND query LIKE %s "
                    "AND pid <> pg_backend_pid()",
                    (self.name, f"%{fragment}%"),
                ).fetchone()[0]
                if killed or time.monotonic() > deadline:
                    return killed
                time.sleep(0.05)

    def sessions(self) -> int:
        """Sessions open on the source database (other than this one)."""
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            return admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.name,)
            ).fetchone()[0]

    def connection(self) -> dict:
        return {
            "id": "c1",
            "type": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "database": self.name,
            "username": "postgres",
            "options": {},
        }

    def quote(self, name: str) -> str:
        return f'"{name}"'

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    # table definitions in this dialect
    skewed = (
        "CREATE TABLE skewed (row_id int PRIMARY KEY, k bigint, label text)",
        # 1..3000 dense, a few far out (ranges in between hold nothing), 40 NULL keys
        "INSERT INTO skewed SELECT g, CASE WHEN g <= 3000 THEN g WHEN g <= 3040 THEN NULL "
        "ELSE 1000000000000 + g END, md5(g::text) FROM generate_series(1, 3045) g",
    )
    big = (
        "CREATE TABLE big (id int PRIMARY KEY, v int, pad text)",
        "INSERT INTO big SELECT g, g % 97, md5(g::text) FROM generate_series(1, {n}) g",
    )
    wide = (
        "CREATE TABLE wide (id int PRIMARY KEY, pad text)",
        "INSERT INTO wide SELECT g, repeat(md5(g::text), 50) FROM generate_series(1, {n}) g",
    )
    changes = (
        "CREATE TABLE changes (id int PRIMARY KEY, version bigint NOT NULL, note text)",
        "INSERT INTO changes SELECT g, g, 'v' || g FROM generate_series(1, 2000) g",
    )
    wide_text_key = "CREATE TABLE named (code text PRIMARY KEY, n int)"
    # a view whose reading fails at one row while the switch is on: one range fails mid-read
    failing = (
        "CREATE TABLE switch (fail boolean)",
        "INSERT INTO switch VALUES (true)",
        "CREATE FUNCTION boom(i int) RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN "
        "IF i = 40000 AND (SELECT fail FROM switch) THEN "
        "RAISE EXCEPTION 'range failure at %', i; END IF; RETURN i; END $$",
        "CREATE VIEW wide_boom AS SELECT id, pad, boom(id) AS checked FROM wide",
    )


class MariaDB:
    db_type = "mysql"

    def __init__(self) -> None:
        require_service("MariaDB", "127.0.0.1", 3306)
        self.name = f"ff_parallel_{uuid.uuid4().hex[:10]}"
        self.run(f"CREATE DATABASE `{self.name}`", database=None)

    def _connect(self, database):
        import pymysql

        return pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", database=database,
            autocommit=True,
        )  # fmt: skip

    def run(self, statement: str, params=None, database: str | None = "") -> list[tuple]:
        conn = self._connect(self.name if database == "" else database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def keys(self, table: str, column: str) -> list:
        return [row[0] for row in self.run(f"SELECT {column} FROM {table}")]  # noqa: S608

    def kill_reader(self, fragment: str) -> int:
        rows = self.run(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s "
            "AND ID <> CONNECTION_ID()",
            (f"%{fragment}%",),
        )
        for (thread,) in rows:
            self.run(f"KILL {int(thread)}")
        return len(rows)

    def sessions(self) -> int:
        return self.run(
            "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = %s "
            "AND ID <> CONNECTION_ID()",
            (self.name,),
        )[0][0]

    def connection(self) -> dict:
        return {
            "id": "c1",
            "type": "mysql",
            "host": "127.0.0.1",
            "port": 3306,
            "database": self.name,
            "username": "root",
            "options": {},
        }

    def quote(self, name: str) -> str:
        return f"`{name}`"

    def drop(self) -> None:
        self.run(f"DROP DATABASE IF EXISTS `{self.name}`", database=None)

    skewed = (
        "CREATE TABLE skewed (row_id INT PRIMARY KEY, k BIGINT NULL, label CHAR(32))",
        "INSERT INTO skewed SELECT seq, CASE WHEN seq <= 3000 THEN seq WHEN seq <= 3040 "
        "THEN NULL ELSE 1000000000000 + seq END, md5(seq) FROM seq_1_to_3045",
    )
    big = (
        "CREATE TABLE big (id INT PRIMARY KEY, v INT, pad TEXT)",
        "INSERT INTO big SELECT seq, seq % 97, md5(seq) FROM seq_1_to_{n}",
    )
    wide = (
        "CREATE TABLE wide (id INT PRIMARY KEY, pad MEDIUMTEXT)",
        "INSERT INTO wide SELECT seq, repeat(md5(seq), 50) FROM seq_1_to_{n}",
    )
    changes = (
        "CREATE TABLE changes (id INT PRIMARY KEY, version BIGINT NOT NULL, note VARCHAR(20))",
        "INSERT INTO changes SELECT seq, seq, concat('v', seq) FROM seq_1_to_2000",
    )
    wide_text_key = "CREATE TABLE named (code VARCHAR(20) PRIMARY KEY, n INT)"
    failing = (
        "CREATE TABLE switch (fail BOOLEAN)",
        "INSERT INTO switch VALUES (true)",
        "CREATE FUNCTION boom(i INT) RETURNS INT DETERMINISTIC READS SQL DATA BEGIN "
        "IF i = 40000 AND (SELECT fail FROM switch) THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'range failure at 40000'; END IF; "
        "RETURN i; END",
        "CREATE VIEW wide_boom AS SELECT id, pad, boom(id) AS checked FROM wide",
    )


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def server(request):
    source = Postgres() if request.param == "postgresql" else MariaDB()
    for statement in source.skewed + source.changes:
        source.run(statement)
    for statement in source.big:
        source.run(statement.format(n=BIG_ROWS))
    for statement in source.wide:
        source.run(statement.format(n=WIDE_ROWS))
    source.run(source.wide_text_key)
    for statement in source.failing:
        source.run(statement)
    yield source
    source.drop()


BIG_ROWS = 200_000
# 1.6 kB rows, 25 MB a range: more than the socket buffers and ADBC's/ConnectorX's read-ahead
# hold, so a range is still being read when its connection is killed
WIDE_ROWS = 64_000


# === running a job the way a worker does ======================================================


class Sink:
    """Run events land here; ``on_running`` is called (once) at the first progress event, in
    the writer's thread, while the range readers are blocked on the full hand-over queue."""

    def __init__(self, on_running=None) -> None:
        self.on_running = on_running
        self.events = []

    def emit(self, event):
        self.events.append(event)
        if self.on_running is not None and event.get("eventType") == "RUNNING":
            hook, self.on_running = self.on_running, None
            hook()

    def heartbeat(self, beat):
        pass


def job_context(
    tmp_path: Path,
    server,
    database_config: dict,
    *,
    bronze: str,
    execution: str,
    sequence: int = 1,
    attempt: int = 1,
    watermark: dict | None = None,
    sink: Sink | None = None,
    cancel_flags: LocalCancelFlags | None = None,
    settings: Settings | None = None,
) -> JobContext:
    """The context of one attempt of a job reading ``server``'s table into ``bronze``."""
    task = JobTask(
        execution_id=execution,
        run_sequence=sequence,
        job_run_id=str(uuid.uuid4()),
        job_id="job-1",
        workflow_id="w",
        workflow_name="w",
        job={
            "name": "parallel",
            "type": "database",
            "sourceConfig": {
                "type": server.db_type,
                "databaseConfig": {"connectionId": "c1", **database_config},
            },
            "destinationConfig": {"bronzeConfig": {"tableName": bronze}},
        },
        connection=server.connection(),
        watermark=watermark,
    )
    return JobContext(
        task=task,
        attempt=attempt,
        settings=settings or Settings(data_dir=tmp_path),
        lake=Lake(str(tmp_path / "lake")),
        sink=sink or Sink(),
        cancel_flags=cancel_flags or LocalCancelFlags(),
    )


def run(tmp_path: Path, server, database_config: dict, **context):
    """One attempt of the job (:func:`job_context`'s arguments), on threads."""
    return run_ingest_job(job_context(tmp_path, server, database_config, **context))


def bronze_table(tmp_path: Path, name: str) -> DeltaTable:
    return DeltaTable(str(tmp_path / "lake" / "bronze" / name))


def bronze_keys(tmp_path: Path, name: str, column: str) -> list:
    return bronze_table(tmp_path, name).to_pyarrow_table(columns=[column]).column(0).to_pylist()


def data_versions(tmp_path: Path, name: str) -> list[dict]:
    """The commits that wrote rows (not the table's creation)."""
    return [
        entry
        for entry in bronze_table(tmp_path, name).history()
        if entry.get("operation") == "WRITE"
    ]


# === the tests ================================================================================


def test_ranges_cover_every_key_once_open_at_both_ends():
    ranges = key_ranges("k", 1, 100, 4)
    assert ranges == [
        KeyRange("k", None, 26, True),
        KeyRange("k", 26, 51),
        KeyRange("k", 51, 76),
        KeyRange("k", 76, None),
    ]
    # a span holding fewer values than ranges: as many ranges as values
    assert len(key_ranges("k", 5, 6, 8)) == 2
    # nothing to split (empty table, all keys NULL, one value): one range, NULLs included
    for lowest, highest in ((None, None), (7, 7)):
        assert key_ranges("k", lowest, highest, 4) == [KeyRange("k", None, None, True)]


@pytest.mark.parametrize("partitions", [2, 4, 7])
def test_a_partitioned_read_lands_every_row_exactly_once(tmp_path, server, partitions):
    outcome = run(
        tmp_path,
        server,
        {"tableName": "skewed", "partitions": partitions, "partitionColumn": "k"},
        bronze="b_skewed",
        execution=str(uuid.uuid4()),
    )
    source = server.keys("skewed", "row_id")
    landed = bronze_keys(tmp_path, "b_skewed", "row_id")
    assert Counter(landed) == Counter(source)  # each row once: no loss, no duplicate
    assert len(landed) == 3045
    # the 40 NULL keys are kept, and so are the far-out keys past the empty ranges
    keys = bronze_keys(tmp_path, "b_skewed", "k")
    assert keys.count(None) == 40
    assert Counter(k for k in keys if k is not None) == Counter(
        k for k in server.keys("skewed", "k") if k is not None
    )
    assert outcome.rows_written == 3045
    assert f"read in {partitions} key ranges of k in parallel, committed once" in outcome.notes
    assert len(data_versions(tmp_path, "b_skewed")) == 1  # one commit


def test_the_primary_key_is_the_default_partition_column(tmp_path, server):
    outcome = run(
        tmp_path,
        server,
        {"tableName": "big", "partitions": 3, "batchSize": 50_000},
        bronze="b_big",
        execution=str(uuid.uuid4()),
    )
    assert "read in 3 key ranges of id in parallel, committed once" in outcome.notes
    landed = bronze_keys(tmp_path, "b_big", "id")
    assert len(landed) == BIG_ROWS and len(set(landed)) == BIG_ROWS
    assert set(landed) == set(range(1, BIG_ROWS + 1))


# ConnectorX fetches 65,536 rows a batch: a 16,000-row range is one batch, read to its end
# before the writer takes its first; no MariaDB reading connection is left to kill then, so
# MariaDB's range fails by a server error
@pytest.mark.parametrize(
    ("server", "how"),
    [("postgresql", "killed"), ("postgresql", "error"), ("mariadb", "error")],
    indirect=["server"],
)
def test_a_range_that_fails_leaves_bronze_unchanged_and_a_retry_lands_each_row_once(
    tmp_path, server, how
):
    config = {"tableName": "wide_boom", "partitions": 4, "partitionColumn": "id"}
    config["batchSize"] = 1_000
    server.run("UPDATE switch SET fail = false")
    # an earlier run's rows are in bronze; the failed run must leave exactly them
    run(tmp_path, server, config, bronze="b_fail", execution=str(uuid.uuid4()))
    before = bronze_table(tmp_path, "b_fail").version()

    # the third range reads id >= 32001 AND id < 48001: kill its connection while the
    # writer holds the first batch (every reader waits on the full hand-over queue), or let
    # the server fail it at row 40000
    third = key_ranges("id", 1, WIDE_ROWS, 4)[2]
    fragment = f"{server.quote('id')} >= {third.lower} AND {server.quote('id')} < {third.upper}"
    killed = []
    hook = None
    if how == "killed":
        hook = lambda: killed.append(server.kill_reader(fragment))  # noqa: E731
    else:
        server.run("UPDATE switch SET fail = true")
    execution = str(uuid.uuid4())
    with pytest.raises(Exception) as failure:  # noqa: PT011 (the run fails, whatever the class)
        run(
            tmp_path,
            server,
            config,
            bronze="b_fail",
            execution=execution,
            sequence=2,
            sink=Sink(on_running=hook),
        )
    if how == "killed":
        assert killed == [1], f"the third range was not found: {failure.value!r}"
        assert "connection" in str(failure.value).lower()
    else:
        assert "range failure at 40000" in str(failure.value) + str(
            getattr(failure.value, "detail", "")
        )
    assert bronze_table(tmp_path, "b_fail").version() == before
    assert len(bronze_keys(tmp_path, "b_fail", "id")) == WIDE_ROWS  # the earlier run only
    # no reading thread is left behind
    assert not [t for t in threading.enumerate() if t.name.startswith("flowforge-range-")]

    server.run("UPDATE switch SET fail = false")
    retry = run(
        tmp_path, server, config, bronze="b_fail", execution=execution, sequence=2, attempt=2
    )
    assert retry.rows_written == WIDE_ROWS
    table = bronze_table(tmp_path, "b_fail").to_pyarrow_table(columns=["id", "_execution_id"])
    mine = [row["id"] for row in table.to_pylist() if row["_execution_id"] == execution]
    assert Counter(mine) == Counter(range(1, WIDE_ROWS + 1))
    # and a second delivery of the same attempt finds the commit: nothing twice
    again = run(
        tmp_path, server, config, bronze="b_fail", execution=execution, sequence=2, attempt=3
    )
    assert again.already_applied is not None
    assert len(bronze_keys(tmp_path, "b_fail", "id")) == 2 * WIDE_ROWS


def test_an_incremental_parallel_read_advances_the_watermark_once(tmp_path, server):
    config = {
        "tableName": "changes",
        "partitions": 4,
        "isIncremental": True,
        "deltaColumn": "version",
    }
    first = run(tmp_path, server, config, bronze="b_changes", execution=str(uuid.uuid4()))
    assert first.rows_written == 2000
    assert first.watermark["value"] == "2000"

    server.run("UPDATE changes SET version = 5000 + id, note = 'changed' WHERE id % 500 = 0")
    server.run("INSERT INTO changes VALUES (2001, 8000, 'new'), (2002, 8000, 'tie')")
    second = run(
        tmp_path,
        server,
        config,
        bronze="b_changes",
        execution=str(uuid.uuid4()),
        sequence=2,
        watermark=first.watermark,
    )
    assert "read in 4 key ranges of id in parallel, committed once" in second.notes
    # 4 updated rows and 2 new ones; the rows at the old watermark (2000) that bronze holds
    # are dropped, not loaded twice
    assert second.rows_written == 6
    assert second.watermark["value"] == "8000"
    commits = data_versions(tmp_path, "b_changes")
    assert len(commits) == 2  # one commit per run, whatever the ranges
    table = bronze_table(tmp_path, "b_changes").to_pyarrow_table(columns=["id", "version"])
    assert Counter(zip(*table.to_pydict().values(), strict=True)) == Counter(
        {**{(i, i): 1 for i in range(1, 2001)}, **{
            (i, 5000 + i): 1 for i in (500, 1000, 1500, 2000)
        }, (2001, 8000): 1, (2002, 8000): 1}
    )  # fmt: skip

    third = run(
        tmp_path,
        server,
        config,
        bronze="b_changes",
        execution=str(uuid.uuid4()),
        sequence=3,
        watermark=second.watermark,
    )
    assert third.rows_written == 0 and third.watermark["value"] == "8000"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"tableName": "skewed", "partitions": 2, "partitionColumn": "nope"},
         "partitionColumn 'nope' is not a column of"),
        ({"tableName": "skewed", "partitions": 2, "partitionColumn": "label"},
         "a parallel read splits an integer column into ranges"),
        ({"tableName": "named", "partitions": 2},
         "has no primary key of one integer column to split a parallel read by; set "
         "partitionColumn"),
    ],
)  # fmt: skip
def test_a_partition_column_that_cannot_be_split_fails_the_job_saying_why(
    tmp_path, server, config, words
):
    with pytest.raises(PermanentError) as failure:
        run(tmp_path, server, config, bronze="b_bad", execution=str(uuid.uuid4()))
    assert words in str(failure.value)
    assert not (tmp_path / "lake" / "bronze" / "b_bad" / "_delta_log").exists() or not [
        entry
        for entry in bronze_table(tmp_path, "b_bad").history()
        if entry.get("operation") == "WRITE"
    ]


# MariaDB cannot share a snapshot between sessions (docs/connectors.md): PostgreSQL only
@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_postgres_ranges_read_one_snapshot_taken_before_they_start(tmp_path, server, monkeypatch):
    """Rows inserted, deleted and updated after the run took its snapshot, but before any
    range began to read, are not seen by any range: the ranges read the table of one moment."""
    from flowforge_ingest import parallel_read

    server.run("CREATE TABLE snap AS SELECT id, v FROM big")
    server.run("ALTER TABLE snap ADD PRIMARY KEY (id)")
    opened = parallel_read.ParallelStream.open.__func__

    def open_then_change(cls, openers):
        stream = opened(cls, openers)  # every range connected, none reading yet
        server.run(f"INSERT INTO snap VALUES ({BIG_ROWS + 1}, -1), ({BIG_ROWS + 2}, -1)")
        server.run("DELETE FROM snap WHERE id IN (10, 150000)")
        server.run("UPDATE snap SET v = -5 WHERE id IN (20, 199999)")
        return stream

    monkeypatch.setattr(parallel_read.ParallelStream, "open", classmethod(open_then_change))
    run(
        tmp_path,
        server,
        {"tableName": "snap", "partitions": 4},
        bronze="b_snap",
        execution=str(uuid.uuid4()),
    )
    table = bronze_table(tmp_path, "b_snap").to_pyarrow_table(columns=["id", "v"]).to_pydict()
    landed = dict(zip(table["id"], table["v"], strict=True))
    assert len(table["id"]) == BIG_ROWS == len(landed)
    assert set(landed) == set(range(1, BIG_ROWS + 1))  # no insert, no delete seen
    assert landed[20] == 20 % 97 and landed[199999] == 199999 % 97  # the old values
    assert server.run("SELECT count(*) FROM snap")[0][0] == BIG_ROWS  # the source did change


def test_a_cancelled_parallel_read_commits_nothing_and_closes_every_connection(tmp_path, server):
    flags = LocalCancelFlags()
    execution = str(uuid.uuid4())
    with pytest.raises(Exception, match="(?i)cancel"):
        run(
            tmp_path,
            server,
            {"tableName": "wide", "partitions": 4, "batchSize": 1_000},
            bronze="b_cancel",
            execution=execution,
            sink=Sink(on_running=lambda: flags.cancel(execution)),
            cancel_flags=flags,
        )
    assert not data_versions(tmp_path, "b_cancel")
    assert not [t for t in threading.enumerate() if t.name.startswith("flowforge-range-")]
    deadline = time.monotonic() + 10  # a KILLed or closed session leaves the list shortly
    while server.sessions() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.sessions() == 0

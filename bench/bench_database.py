"""Database -> bronze: FlowForge's ingest of a PostgreSQL and a MariaDB table against the
fastest raw reader and against what users write by hand.

For each server (PostgreSQL on 127.0.0.1:5432, user ``postgres``, trust auth; MariaDB on
127.0.0.1:3306, ``root`` with an empty password; ``SKIPPED`` when one does not answer) a
fresh database is created, filled and dropped at the end:

- ``orders``: 1,000,000 rows x 10 columns (int, bigint, numeric(18,2), varchar, text, date,
  timestamp, timestamptz / MariaDB TIMESTAMP(6), boolean, a nullable int with 30% NULLs),
  generated in the server (``generate_series``; MariaDB's sequence engine
  ``seq_1_to_N``), so loading takes seconds and nothing crosses the wire;
- ``orders_big``: the same rows, 5,000,000 of them, for the memory figure.

Measured, alternating, best of a few runs, after one untimed run of each side but pandas
(the imports a worker pays once):

1. FlowForge: exactly ``database_source.ingest_database``'s path without the job around
   it: ``connector_for(db_type).connect(params)``, ``describe`` of the table,
   ``execute_batches`` of ``sql.plan_read(...)`` (batches of 100,000 rows) into
   ``write_bronze`` with audit columns, a new table of a local Lake each run.
2. The raw limit: ConnectorX ``read_sql(..., return_type="arrow")`` (one connection, no
   partitioning, as FlowForge reads) + ``pyarrow.parquet.write_table``. For PostgreSQL,
   ADBC (``adbc_driver_postgresql.dbapi``, ``fetch_arrow_table``) is timed too, for
   comparison. Target: FlowForge / ConnectorX >= 0.8 (rows/s). FlowForge itself reads
   these tables with ADBC (PostgreSQL) and ConnectorX (MariaDB): the ratio is what its
   type conversions, batching, audit columns and Delta commit cost over the bare reader.
3. By hand: ``pandas.read_sql(query, sqlalchemy_engine)`` + ``DataFrame.to_parquet``.
   Target: FlowForge at least 3x as fast.
4. Peak RSS (the child's own VmHWM) of the FlowForge ingest of ``orders_big`` in a fresh
   interpreter; target <= 1 GB. ConnectorX's (which holds the whole result) for comparison.

5. Parallel reads (issue 17, section 4): a 4,000,000-row PostgreSQL table ``orders_par``
   (the same columns, primary key ``id``) read by FlowForge's job path
   (``runner.run_ingest_job`` with ``databaseConfig.partitions`` 2 and 4: key ranges on
   their own connections in threads, one bronze commit) against the raw single stream: ADBC
   ``fetch_arrow_table`` + ``pq.write_table``, alternating, best of 3. Target: FlowForge with
   4 ranges >= 1.3x ADBC. FlowForge with one stream (``partitions`` 1) is shown too, and the
   CPU seconds of each run: this process's (every thread) and the server backends' for the
   bench database (``bench/_server_cpu.py``, from ``/proc``), and the CEILING those allow 4
   ranges against ADBC on this machine's cores, idle. Then the ranges as N separate
   processes (N = 1, 2, 4), each a FlowForge job reading one key range by a query, started
   together: their rows/s, per range and together, and the CPU of the processes and of the
   server. From those a PROJECTION (computed, not measured) of N workers with cores of their
   own: ``min(N x a worker's rows per CPU-second, the database's rows per CPU-second x an
   assumed number of database cores)``. Peak RSS (VmHWM) of the job in a fresh interpreter
   with one stream and with 4 ranges, for information. ``FLOWFORGE_BENCH_DATABASE=parallel`` runs only this
   part (``=single`` only parts 1-4).

A baseline whose package is missing prints ``SKIPPED (pip install ...)``.
``FLOWFORGE_BENCH_SCALE`` scales the row counts. Output goes under ``bench/.out/database``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench._common import (
    check,
    line,
    median,
    mib,
    out_dir,
    rate,
    run_child,
    scaled,
    table_to_bronze,
    timed,
)
from bench._server_cpu import ServerCpu, own_cpu_seconds

THROUGHPUT_ROWS = 1_000_000
MEMORY_ROWS = 5_000_000
BATCH_SIZE = 100_000
REPEATS = 3
PANDAS_REPEATS = 2  # pandas is the slow side: two runs are enough to see it
TARGET_RATIO = 0.8
TARGET_SPEEDUP = 3.0
TARGET_RSS = 1 << 30  # 1 GiB
THROUGHPUT_TABLE = "orders"
MEMORY_TABLE = "orders_big"
PARALLEL_TABLE = "orders_par"
PARALLEL_ROWS = 4_000_000
PARALLEL_RANGES = (2, 4)
TARGET_PARALLEL = 1.3
PROJECTED_WORKERS = (1, 2, 4, 8, 16, 32)
ASSUMED_DB_CORES = 8


@dataclass(frozen=True)
class Server:
    name: str
    db_type: str  # FlowForge's
    host: str
    port: int
    user: str

    def connectorx_url(self, database: str) -> str:
        scheme = "postgresql" if self.db_type == "postgresql" else "mysql"
        return f"{scheme}://{self.user}:@{self.host}:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        driver = "postgresql+psycopg" if self.db_type == "postgresql" else "mysql+pymysql"
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"


POSTGRES = Server("PostgreSQL", "postgresql", "127.0.0.1", 5432, "postgres")
MARIADB = Server("MariaDB", "mysql", "127.0.0.1", 3306, "root")
SERVERS = {server.db_type: server for server in (POSTGRES, MARIADB)}

# --- the source tables --------------------------------------------------------------------------

_PG_TABLE = """
CREATE UNLOGGED TABLE {table} (
    id integer NOT NULL,
    customer_id bigint NOT NULL,
    amount numeric(18, 2) NOT NULL,
    name varchar(40) NOT NULL,
    note text NOT NULL,
    order_date date NOT NULL,
    created_at timestamp NOT NULL,
    updated_at timestamptz NOT NULL,
    active boolean NOT NULL,
    referrer_id integer
)
"""
_PG_FILL = """
INSERT INTO {table}
SELECT i,
       10000000000 + (i::bigint * 31) % 100003,
       ((i::bigint * 7919 + 13) % 10000000) / 100.0,
       'customer_' || (i::bigint * 7) % 250000,
       'order ' || i || ' shipped to warehouse ' || (i % 97) || ', gate ' || (i % 13),
       date '2020-01-01' + i % 1500,
       timestamp '2023-01-01' + ((i::bigint * 37) % 31536000) * interval '1 second',
       timestamptz '2024-01-01 00:00:00+00'
           + ((i::bigint * 53) % 31536000) * interval '1 second'
           + (i % 1000000) * interval '1 microsecond',
       i % 3 = 0,
       CASE WHEN i % 10 < 3 THEN NULL ELSE (i * 13) % 50000 END
FROM generate_series(1, {rows}) AS i
"""
# DATETIME for PostgreSQL's timestamp; TIMESTAMP(6) is MariaDB's instant (stored in UTC).
_MARIADB_TABLE = """
CREATE TABLE {table} (
    id INT NOT NULL,
    customer_id BIGINT NOT NULL,
    amount DECIMAL(18, 2) NOT NULL,
    name VARCHAR(40) NOT NULL,
    note TEXT NOT NULL,
    order_date DATE NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    active BOOLEAN NOT NULL,
    referrer_id INT NULL
) ENGINE=InnoDB
"""
_MARIADB_FILL = """
INSERT INTO {table}
SELECT seq,
       10000000000 + (seq * 31) % 100003,
       ((seq * 7919 + 13) % 10000000) / 100,
       CONCAT('customer_', (seq * 7) % 250000),
       CONCAT('order ', seq, ' shipped to warehouse ', seq % 97, ', gate ', seq % 13),
       DATE '2020-01-01' + INTERVAL (seq % 1500) DAY,
       TIMESTAMP '2023-01-01 00:00:00' + INTERVAL ((seq * 37) % 31536000) SECOND,
       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL ((seq * 53) % 31536000) SECOND
           + INTERVAL (seq % 1000000) MICROSECOND,
       seq % 3 = 0,
       IF(seq % 10 < 3, NULL, (seq * 13) % 50000)
FROM seq_1_to_{rows}
"""


def _answers(server: Server) -> bool:
    try:
        with socket.create_connection((server.host, server.port), timeout=2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def postgres_database(tables: dict[str, int]) -> Iterator[str]:
    """A fresh database holding ``tables`` (name -> rows); dropped on the way out."""
    import psycopg

    name = f"flowforge_bench_{uuid.uuid4().hex[:12]}"
    admin = f"host={POSTGRES.host} port={POSTGRES.port} user={POSTGRES.user} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = f"host={POSTGRES.host} port={POSTGRES.port} user={POSTGRES.user} dbname={name}"
        with psycopg.connect(dsn, autocommit=True) as connection:
            for table, rows in tables.items():
                connection.execute(_PG_TABLE.format(table=table))
                connection.execute(_PG_FILL.format(table=table, rows=rows))
                # Sets the hint bits now: otherwise the first reader pays for writing them.
                connection.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def mariadb_database(tables: dict[str, int]) -> Iterator[str]:
    """A fresh database holding ``tables`` (name -> rows); dropped on the way out."""
    import pymysql

    name = f"flowforge_bench_{uuid.uuid4().hex[:12]}"
    connection = pymysql.connect(
        host=MARIADB.host, port=MARIADB.port, user=MARIADB.user, password="", autocommit=True
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
            try:
                cursor.execute(f"USE `{name}`")
                cursor.execute("SET time_zone = '+00:00'")
                for table, rows in tables.items():
                    cursor.execute(_MARIADB_TABLE.format(table=table))
                    cursor.execute(_MARIADB_FILL.format(table=table, rows=rows))
                yield name
            finally:
                # A connection left open on the database would make the drop wait for ever.
                cursor.execute("SET SESSION lock_wait_timeout = 60")
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


# --- the three ways of reading ------------------------------------------------------------------


def flowforge_ingest(db_type: str, database: str, table: str, lake_root: str) -> int:
    """What ingest_database does for a full read of ``table`` of the server of ``db_type``
    (``postgresql`` or ``mysql``); returns the rows written."""
    from flowforge_ingest.connectors.base import ConnectionParams

    server = SERVERS[db_type]
    params = ConnectionParams(
        db_type=db_type,
        host=server.host,
        port=server.port,
        database=database,
        username=server.user,
        password="",
    )
    return table_to_bronze(params, database, table, lake_root, BATCH_SIZE)


def connectorx_baseline(url: str, table: str, parquet_path: str) -> int:
    import connectorx
    import pyarrow.parquet as pq

    data = connectorx.read_sql(url, f"SELECT * FROM {table}", return_type="arrow")  # noqa: S608
    pq.write_table(data, parquet_path)
    return data.num_rows


def adbc_baseline(url: str, table: str, parquet_path: str) -> int:
    import adbc_driver_postgresql.dbapi
    import pyarrow.parquet as pq

    with adbc_driver_postgresql.dbapi.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
        data = cursor.fetch_arrow_table()
    pq.write_table(data, parquet_path)
    return data.num_rows


def pandas_baseline(url: str, table: str, parquet_path: str) -> int:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        frame = pd.read_sql(f"SELECT * FROM {table}", engine)  # noqa: S608
    finally:
        engine.dispose()
    frame.to_parquet(parquet_path)
    return len(frame)


_PACKAGES = {"connectorx": "connectorx", "pandas": "pandas", "adbc": "adbc-driver-postgresql"}
_MODULES = {"connectorx": "connectorx", "pandas": "pandas", "adbc": "adbc_driver_postgresql"}


def _missing(baseline: str) -> str | None:
    """``SKIPPED (pip install ...)`` when the baseline's package is not importable."""
    if importlib.util.find_spec(_MODULES[baseline]) is None:
        return f"SKIPPED (pip install {_PACKAGES[baseline]})"
    return None


# --- measuring -----------------------------------------------------------------------------------


def _throughput(server: Server, database: str, work: Path, rows: int) -> None:
    url = server.connectorx_url(database)
    runners: dict[str, Callable[[Path], int]] = {
        "flowforge": lambda target: flowforge_ingest(
            server.db_type, database, THROUGHPUT_TABLE, str(target / "lake")
        ),
        "connectorx": lambda target: connectorx_baseline(
            url, THROUGHPUT_TABLE, str(target / "cx.parquet")
        ),
    }
    if server.db_type == "postgresql":
        runners["adbc"] = lambda target: adbc_baseline(
            url, THROUGHPUT_TABLE, str(target / "adbc.parquet")
        )
    runners["pandas"] = lambda target: pandas_baseline(
        server.sqlalchemy_url(database), THROUGHPUT_TABLE, str(target / "pandas.parquet")
    )
    skipped = {name: _missing(name) for name in runners if name != "flowforge"}
    times: dict[str, list[float]] = {name: [] for name in runners}
    # One untimed run of each fast side first: a worker imports its modules (deltalake,
    # the connectors, ConnectorX, ADBC) once, not per job. pandas, the slow side, is not
    # warmed (it could only gain).
    for name, run in runners.items():
        if not skipped.get(name) and name != "pandas":
            target = work / f"warm-{name}"
            target.mkdir(parents=True, exist_ok=True)
            try:
                run(target)
            finally:
                shutil.rmtree(target, ignore_errors=True)
    for attempt in range(REPEATS):
        # Alternate, so a noisy neighbour hurts every side alike.
        for name, run in runners.items():
            if skipped.get(name) or (name == "pandas" and attempt >= PANDAS_REPEATS):
                continue
            target = work / f"run-{attempt}-{name}"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            try:
                seconds, count = timed(run, target)
            finally:
                shutil.rmtree(target, ignore_errors=True)
            assert count == rows, f"{name} read {count} rows of {rows}"
            times[name].append(seconds)

    labels = {
        "flowforge": "FlowForge execute_batches + write_bronze",
        "connectorx": "ConnectorX + pq.write_table (raw)",
        "adbc": "ADBC + pq.write_table (for comparison)",
        "pandas": "pandas.read_sql(SQLAlchemy) + to_parquet",
    }
    for name in runners:
        if skipped.get(name):
            line(labels[name], skipped[name] or "")
            continue
        best = min(times[name])
        line(
            labels[name],
            f"{rate(rows, best)}  ({best:.2f} s best of {len(times[name])}; "
            f"all {', '.join(f'{s:.2f}' for s in times[name])})",
        )
    ours = times["flowforge"]
    if times["connectorx"]:
        raw = times["connectorx"]
        ratio = min(raw) / min(ours)
        paired = median([raw[i] / ours[i] for i in range(REPEATS)])
        check(
            "throughput ratio FlowForge / ConnectorX",
            f"{ratio:.2f} of the best times (median of paired runs: {paired:.2f})",
            ok=ratio >= TARGET_RATIO,
            target=f">= {TARGET_RATIO}",
        )
    if times.get("adbc"):
        line("throughput ratio FlowForge / ADBC", f"{min(times['adbc']) / min(ours):.2f}")
    if times["pandas"]:
        speedup = min(times["pandas"]) / min(ours)
        check(
            "speed-up FlowForge / pandas",
            f"{speedup:.1f}x",
            ok=speedup >= TARGET_SPEEDUP,
            target=f">= {TARGET_SPEEDUP:.0f}x",
        )


_CHILD_FLOWFORGE = """
from bench.bench_database import flowforge_ingest
print(flowforge_ingest({db_type!r}, {database!r}, {table!r}, {out!r}))
"""
_CHILD_CONNECTORX = """
from bench.bench_database import connectorx_baseline
print(connectorx_baseline({url!r}, {table!r}, {out!r}))
"""


def _memory(server: Server, database: str, work: Path, rows: int) -> None:
    target = work / "rss"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    cx_skipped = _missing("connectorx")
    theirs = None
    try:
        ours = run_child(
            _CHILD_FLOWFORGE.format(
                db_type=server.db_type,
                database=database,
                table=MEMORY_TABLE,
                out=str(target / "lake"),
            )
        )
        if not cx_skipped:
            theirs = run_child(
                _CHILD_CONNECTORX.format(
                    url=server.connectorx_url(database),
                    table=MEMORY_TABLE,
                    out=str(target / "cx.parquet"),
                )
            )
    finally:
        shutil.rmtree(target, ignore_errors=True)
    assert int(ours.stdout.split()[-1]) == rows, ours.stdout
    check(
        "peak RSS, FlowForge ingest (fresh process)",
        f"{mib(ours.max_rss_bytes)} for {rows:,} rows  ({ours.seconds:.1f} s incl. start-up)",
        ok=ours.max_rss_bytes <= TARGET_RSS,
        target="<= 1024 MiB",
    )
    if theirs is None:
        line("peak RSS, ConnectorX + write_table", cx_skipped or "")
    else:
        line(
            "peak RSS, ConnectorX + write_table",
            f"{mib(theirs.max_rss_bytes)}  ({theirs.seconds:.1f} s incl. start-up; it holds "
            "the whole result)",
        )


def _server(server: Server, make_database, work: Path) -> None:
    print(f"  -- {server.name}", flush=True)
    if not _answers(server):
        print(
            f"  SKIPPED: {server.name} is not answering at {server.host}:{server.port} "
            "(start it and re-run)"
        )
        return
    rows, big = scaled(THROUGHPUT_ROWS), scaled(MEMORY_ROWS)
    start = time.perf_counter()
    with make_database({THROUGHPUT_TABLE: rows, MEMORY_TABLE: big}) as database:
        load = time.perf_counter() - start
        line(
            "source tables",
            f"{rows:,} and {big:,} rows x 10 columns, generated in {load:.1f} s",
        )
        _throughput(server, database, work, rows)
        _memory(server, database, work, big)


# --- parallel reads (issue 17, section 4) --------------------------------------------------------


class _Sink:
    def emit(self, event) -> None:
        pass

    def heartbeat(self, beat) -> None:
        pass


def flowforge_job(
    database: str, table: str | None, data_dir: str, partitions: int, query: str | None = None
) -> tuple[int, list]:
    """A database job as a worker runs it (``run_ingest_job``), reading ``table`` of the bench
    PostgreSQL in ``partitions`` key ranges of ``id`` (or, without a table, ``query``);
    (rows written, the job's notes)."""
    from flowforge_ingest.runner import run_ingest_job
    from flowforge_runtime.job import JobContext, LocalCancelFlags
    from flowforge_shared.contracts.tasks import JobTask
    from flowforge_shared.lake import Lake
    from flowforge_shared.settings import Settings

    config: dict = {"connectionId": "c1", "batchSize": BATCH_SIZE}
    config.update({"tableName": table} if table else {"query": query})
    if partitions > 1:
        config.update(partitions=partitions, partitionColumn="id")
    task = JobTask(
        execution_id=str(uuid.uuid4()),
        run_sequence=1,
        job_run_id=str(uuid.uuid4()),
        job_id="bench",
        workflow_id="bench",
        workflow_name="bench",
        job={
            "name": "bench",
            "type": "database",
            "sourceConfig": {"type": "postgresql", "databaseConfig": config},
            "destinationConfig": {"bronzeConfig": {"tableName": "bench"}},
        },
        connection={
            "id": "c1",
            "type": "postgresql",
            "host": POSTGRES.host,
            "port": POSTGRES.port,
            "database": database,
            "username": POSTGRES.user,
            "options": {},
        },
    )
    context = JobContext(
        task=task,
        attempt=1,
        settings=Settings(data_dir=Path(data_dir)),
        lake=Lake(str(Path(data_dir) / "lake")),
        sink=_Sink(),
        cancel_flags=LocalCancelFlags(),
    )
    outcome = run_ingest_job(context)
    return outcome.rows_written, outcome.notes


_CHILD_PARALLEL = """
from bench.bench_database import flowforge_job
print(flowforge_job({database!r}, {table!r}, {out!r}, {n})[0])
"""


def _server_copy_seconds(database: str, table: str) -> float:
    """How long the server alone takes to produce the binary COPY of ``table`` (to
    /dev/null on its own host): what one reading connection costs the database."""
    import psycopg

    dsn = f"host={POSTGRES.host} port={POSTGRES.port} user={POSTGRES.user} dbname={database}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        start = time.perf_counter()
        connection.execute(f"COPY {table} TO '/dev/null' (FORMAT binary)")
        return time.perf_counter() - start


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _parallel(work: Path) -> None:
    print("  -- PostgreSQL, parallel reads (issue 17, section 4)", flush=True)
    if not _answers(POSTGRES):
        print("  SKIPPED: PostgreSQL is not answering at 127.0.0.1:5432")
        return
    skipped = _missing("adbc")
    if skipped:
        line("ADBC + pq.write_table", skipped)
        return
    rows = scaled(PARALLEL_ROWS)
    start = time.perf_counter()
    with postgres_database({}) as database:
        import psycopg

        dsn = f"host={POSTGRES.host} port={POSTGRES.port} user={POSTGRES.user} dbname={database}"
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(_PG_TABLE.format(table=PARALLEL_TABLE))
            connection.execute(_PG_FILL.format(table=PARALLEL_TABLE, rows=rows))
            connection.execute(f"ALTER TABLE {PARALLEL_TABLE} ADD PRIMARY KEY (id)")
            connection.execute(f"VACUUM (FREEZE, ANALYZE) {PARALLEL_TABLE}")
        line(
            "source table",
            f"{rows:,} rows x 10 columns, generated in {time.perf_counter() - start:.1f} s",
        )
        line("load average before (1, 5, 15 min)", _load())
        url = POSTGRES.connectorx_url(database)
        runners: dict[str, Callable[[Path], int]] = {
            "adbc": lambda target: adbc_baseline(url, PARALLEL_TABLE, str(target / "a.parquet")),
            "ff1": lambda target: flowforge_job(database, PARALLEL_TABLE, str(target), 1)[0],
        }
        for ranges in PARALLEL_RANGES:
            runners[f"ff{ranges}"] = lambda target, n=ranges: flowforge_job(
                database, PARALLEL_TABLE, str(target), n
            )[0]
        # one untimed run of each: the imports and the first connections a worker pays once
        for name, run in runners.items():
            target = work / f"par-warm-{name}"
            target.mkdir(parents=True, exist_ok=True)
            try:
                run(target)
            finally:
                shutil.rmtree(target, ignore_errors=True)
        times: dict[str, list[float]] = {name: [] for name in runners}
        # CPU seconds of each run: this process (reader and writer threads) and the server's
        # backends for the bench database (None where /proc does not show them)
        cpu: dict[str, list[tuple[float, float | None]]] = {name: [] for name in runners}
        for attempt in range(REPEATS):
            for name, run in runners.items():  # alternating
                target = work / f"par-{attempt}-{name}"
                target.mkdir(parents=True)
                try:
                    client = own_cpu_seconds()
                    with ServerCpu(database) as server:
                        seconds, count = timed(run, target)
                    client = own_cpu_seconds() - client - server.own_seconds
                    cpu[name].append((client, server.seconds()))
                finally:
                    shutil.rmtree(target, ignore_errors=True)
                assert count == rows, f"{name} wrote {count} rows of {rows}"
                times[name].append(seconds)
        processes = _range_processes(database, rows, work)
        server_copy = min(_server_copy_seconds(database, PARALLEL_TABLE) for _ in range(2))
        memory = {}
        for ranges in (1, max(PARALLEL_RANGES)):
            target = work / f"par-rss-{ranges}"
            target.mkdir(parents=True)
            try:
                memory[ranges] = run_child(
                    _CHILD_PARALLEL.format(
                        database=database, table=PARALLEL_TABLE, out=str(target), n=ranges
                    )
                )
            finally:
                shutil.rmtree(target, ignore_errors=True)
    labels = {
        "adbc": "ADBC + pq.write_table, one stream (raw)",
        "ff1": "FlowForge job, one stream",
        **{f"ff{n}": f"FlowForge job, {n} key ranges in threads" for n in PARALLEL_RANGES},
    }
    for name in runners:
        best = min(times[name])
        line(
            labels[name],
            f"{rate(rows, best)}  ({best:.2f} s best of {REPEATS}; "
            f"all {', '.join(f'{s:.2f}' for s in times[name])})",
        )
    for name in runners:
        line(f"CPU s, {labels[name]}", _cpu_text(cpu[name]))
    _ceiling(cpu)
    raw = min(times["adbc"])
    for name in runners:
        if name == "adbc":
            continue
        ratio = raw / min(times[name])
        paired = median([times["adbc"][i] / times[name][i] for i in range(REPEATS)])
        text = f"{ratio:.2f} of the best times (median of paired runs: {paired:.2f})"
        if name == f"ff{max(PARALLEL_RANGES)}":
            check(f"ratio {labels[name]} / ADBC", text, ok=ratio >= TARGET_PARALLEL,
                  target=f">= {TARGET_PARALLEL}")  # fmt: skip
        else:
            line(f"ratio {labels[name]} / ADBC", text)
    for ranges, child in memory.items():
        line(
            f"peak RSS, FlowForge job, {ranges} range{'s' if ranges > 1 else ''}",
            f"{mib(child.max_rss_bytes)}  ({child.seconds:.1f} s incl. start-up)",
        )
    line("load average after (1, 5, 15 min)", _load())
    line("cores of this machine", str(os.cpu_count()))

    _projection(rows, processes, server_copy)


def _ceiling(cpu: dict[str, list[tuple[float, float | None]]]) -> None:
    """The best 4 ranges could do against ADBC on this machine with every core free: ADBC's
    fetch-then-write is serial on the client (its wall at least its client CPU; the server
    works meanwhile), and the ranges at best spread their client and server CPU over every
    core."""
    widest = f"ff{max(PARALLEL_RANGES)}"
    if any(run[1] is None for run in cpu[widest]):
        return
    adbc_client = median([run[0] for run in cpu["adbc"]])
    total = median([run[0] + run[1] for run in cpu[widest]])
    cores = os.cpu_count() or 1
    line(
        f"CEILING (computed) {max(PARALLEL_RANGES)} ranges / ADBC",
        f"<= {adbc_client / (total / cores):.2f} on {cores} idle cores (ADBC's client CPU "
        f"{adbc_client:.2f} s / the ranges' total CPU {total:.2f} s over {cores} cores)",
    )


def _cpu_text(runs: list[tuple[float, float | None]]) -> str:
    """Median CPU seconds of a runner's timed runs: the client's, the server's, the sum."""
    client = median([run[0] for run in runs])
    if any(run[1] is None for run in runs):
        return f"client {client:.2f} (server's backends not visible here)"
    server = median([run[1] for run in runs])
    return f"client {client:.2f} + server {server:.2f} = {client + server:.2f} (median)"


# --- ranges in processes of their own (the distributed mode's shape) ------------------------

RANGE_PROCESSES = (1, 2, 4)

_WARM_QUERY = f"SELECT * FROM {PARALLEL_TABLE} WHERE id <= 1000"  # noqa: S608
_CHILD_RANGE = """
import json, os, sys, time
from bench.bench_database import flowforge_job
# one untimed job first: the imports and first connection a worker pays once
flowforge_job({database!r}, None, {out!r} + "-warm", 1, query={warm!r})
print("ready", flush=True)
sys.stdin.readline()
cpu, start = os.times(), time.perf_counter()
rows = flowforge_job({database!r}, None, {out!r}, 1, query={query!r})[0]
seconds, end = time.perf_counter() - start, os.times()
print(json.dumps(dict(rows=rows, seconds=seconds,
      cpu=end.user + end.system - cpu.user - cpu.system)), flush=True)
"""


@dataclass(frozen=True)
class RangeRun:
    """N processes, each a FlowForge job reading one key range of the table into bronze."""

    processes: int
    seconds: float  # from the common start to the last process's end
    per_range: list[tuple[int, float, float]]  # (rows, seconds, client CPU s) per process
    server_cpu: float | None


def _range_processes(database: str, rows: int, work: Path) -> list[RangeRun]:
    """For N in RANGE_PROCESSES: N fresh interpreters each run the job over one of N equal
    key ranges of ``id`` (a query job, so each commits its own table: what a worker of the
    distributed mode does but for the shared commit), started together once all have
    imported; the server's CPU for the bench database is sampled meanwhile. Best of 2 by
    wall time."""
    import json
    import subprocess

    from flowforge_ingest.parallel_read import key_ranges

    runs = []
    for count in RANGE_PROCESSES:
        best = None
        for attempt in range(2):
            queries = [_range_query(part) for part in key_ranges("id", 1, rows, count)]
            children = []
            for index, query in enumerate(queries):
                target = work / f"par-proc-{count}-{attempt}-{index}"
                target.mkdir(parents=True)
                code = _CHILD_RANGE.format(
                    database=database, out=str(target), query=query, warm=_WARM_QUERY
                )
                children.append(
                    subprocess.Popen(
                        [sys.executable, "-c", code],
                        cwd=Path(__file__).resolve().parent.parent,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            try:
                for child in children:
                    assert child.stdout.readline().strip() == "ready"
                with ServerCpu(database) as server:
                    start = time.perf_counter()
                    for child in children:
                        child.stdin.write("go\n")
                        child.stdin.flush()
                    results = [json.loads(child.stdout.readline()) for child in children]
                    seconds = time.perf_counter() - start
                for child in children:
                    child.wait(timeout=60)
            finally:
                for child in children:
                    if child.poll() is None:
                        child.kill()
                        child.wait()
                for index in range(count):
                    for suffix in ("", "-warm"):
                        name = f"par-proc-{count}-{attempt}-{index}{suffix}"
                        shutil.rmtree(work / name, ignore_errors=True)
            assert sum(result["rows"] for result in results) == rows
            run = RangeRun(
                count,
                seconds,
                [(result["rows"], result["seconds"], result["cpu"]) for result in results],
                server.seconds(),
            )
            if best is None or run.seconds < best.seconds:
                best = run
        runs.append(best)
    return runs


def _range_query(part) -> str:
    conditions = []
    if part.lower is not None:
        conditions.append(f"id >= {int(part.lower)}")
    if part.upper is not None:
        conditions.append(f"id < {int(part.upper)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT * FROM {PARALLEL_TABLE}{where}"  # noqa: S608 (the bench's own integers)


def _projection(rows: int, runs: list[RangeRun], server_copy: float) -> None:
    """What N processes measured here, and the projection for a cluster from their CPU."""
    print(
        f"  -- key ranges as separate processes (one FlowForge job each, started together), "
        f"load {_load()}",
        flush=True,
    )
    for run in runs:
        range_rates = [part_rows / part_seconds for part_rows, part_seconds, _ in run.per_range]
        client = sum(part[2] for part in run.per_range)
        server = "n/a" if run.server_cpu is None else f"{run.server_cpu:.2f}"
        line(
            f"{run.processes} process{'es' if run.processes > 1 else ''}",
            f"{rate(rows, run.seconds)} together ({run.seconds:.2f} s); per range "
            f"{min(range_rates):,.0f}-{max(range_rates):,.0f} rows/s; CPU s client "
            f"{client:.2f}, server {server}",
        )
    # Per row, from the N-process runs: what a worker's process spends (its own cores in a
    # cluster) and what the database's backends spend (the shared part).
    one = runs[0]
    worker_cpu_per_row = sum(part[2] for part in one.per_range) / rows
    worker_rate = 1 / worker_cpu_per_row  # a worker process kept busy on one core of its own
    widest = runs[-1]
    if widest.server_cpu is not None:
        server_per_row = widest.server_cpu / rows
        source = f"the server's backends with {widest.processes} ranges, measured"
    else:
        server_per_row = server_copy / rows
        source = "the server's own binary COPY to /dev/null, measured"
    bound = ASSUMED_DB_CORES / server_per_row
    line(
        "PROJECTION inputs",
        f"a worker {worker_rate:,.0f} rows per CPU-second (client CPU of the 1-process run); "
        f"the database {1 / server_per_row:,.0f} rows per CPU-second ({source}) x "
        f"{ASSUMED_DB_CORES} cores (assumed) = {bound:,.0f} rows/s",
    )
    print(
        "  PROJECTION (computed, not measured): N workers with cores of their own, one range "
        "each, one commit (ms, not counted), network not counted; load now " + _load(),
        flush=True,
    )
    line(
        "  PROJECTION database-bound from",
        f"{bound / worker_rate:.0f} workers ({server_per_row * worker_rate:.2f} database cores "
        "per worker)",
    )
    for workers in PROJECTED_WORKERS:
        projected = min(workers * worker_rate, bound)
        limited = " (database-bound)" if workers * worker_rate > bound else ""
        line(
            f"  PROJECTION {workers:>2} workers",
            f"{projected:,.0f} rows/s = {projected / worker_rate:.2f}x one worker{limited}",
        )


def main() -> None:
    work = out_dir("database", fresh=True)
    part = os.environ.get("FLOWFORGE_BENCH_DATABASE", "")
    try:
        if part != "parallel":
            _server(POSTGRES, postgres_database, work)
            _server(MARIADB, mariadb_database, work)
        if part != "single":
            _parallel(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from bench._common import report  # the SUMMARY's figures (bench/README.md)

    report(__name__, lines=("throughput ratio FlowForge / ADBC",))

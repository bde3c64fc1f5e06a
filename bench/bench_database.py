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

A baseline whose package is missing prints ``SKIPPED (pip install ...)``.
``FLOWFORGE_BENCH_SCALE`` scales the row counts. Output goes under ``bench/.out/database``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
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


def main() -> None:
    work = out_dir("database", fresh=True)
    try:
        _server(POSTGRES, postgres_database, work)
        _server(MARIADB, mariadb_database, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from bench._common import report  # the SUMMARY's figures (bench/README.md)

    report(__name__, lines=("throughput ratio FlowForge / ADBC",))

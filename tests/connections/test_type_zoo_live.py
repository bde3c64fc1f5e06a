"""Every source type of docs/connectors.md's mapping tables, end to end through the product:
a saved connection (``POST /api/connections``), a database job in tableName mode, a run
(``POST /api/workflows/{id}/run``), and the bronze table read back with deltalake's own
reader. Each value must equal the source's value after the documented Delta storage
conversion (bronze.py): unsigned integers widened, ``time`` as text, durations as int64
microseconds.

Against the real PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) of this machine,
each in a fresh database dropped at the end, and an SQLite file in the data dir's
``sources/`` folder. Also: a PostgreSQL read whose connection is killed mid-read is retried
and lands every row exactly once.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import time
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings, require_service

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
UTC = dt.UTC
AUDIT = {"_ingested_at", "_execution_id", "_job_id", "_source", "_source_row"}


def micros(**parts) -> int:
    """A duration as the int64 microseconds bronze stores."""
    return dt.timedelta(**parts) // dt.timedelta(microseconds=1)


def f32(value: float) -> float:
    """``value`` as the nearest float32, the way a ``real`` column holds it."""
    return pa.array([value], pa.float32())[0].as_py()


# --- the product path -------------------------------------------------------------------------


def start_app(tmp_path, **overrides):
    from flowforge.app import create_app

    app = create_app(make_settings(tmp_path, **overrides))
    client = TestClient(app)
    client.__enter__()
    client.settings = app.state.settings
    return app, client


@pytest.fixture
def api(tmp_path):
    app, client = start_app(tmp_path)
    yield client
    client.__exit__(None, None, None)
    app.state.database.dispose()


def save_connection(api, **fields) -> str:
    body = {"name": f"zoo-{uuid.uuid4().hex[:6]}", **fields}
    response = api.post("/api/connections", json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_job(api, connection_id, db_type, table, bronze_table, batch_size=10_000):
    workflow = api.post("/api/workflows", json={"name": f"zoo-{uuid.uuid4().hex[:6]}"}, headers=H)
    assert workflow.status_code == 201, workflow.text
    workflow_id = workflow.json()["id"]
    job = {
        "name": f"Ingest {table}",
        "type": "database",
        "sourceConfig": {
            "type": db_type,
            "databaseConfig": {
                "connectionId": connection_id,
                "tableName": table,
                "batchSize": batch_size,
            },
        },
        "destinationConfig": {"bronzeConfig": {"tableName": bronze_table}},
    }
    created = api.post(f"/api/workflows/{workflow_id}/jobs", json=job, headers=H)
    assert created.status_code == 201, created.text
    return workflow_id


def start_run(api, workflow_id) -> str:
    response = api.post(f"/api/workflows/{workflow_id}/run", headers=H)
    assert response.status_code in (200, 201, 202), response.text
    return response.json()["executionId"]


def execution(api, execution_id) -> dict:
    return api.get(f"/api/executions/{execution_id}", headers=H).json()


def wait(api, execution_id, seconds=60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = execution(api, execution_id)
        if current["status"] in ("succeeded", "failed", "cancelled"):
            return current
        time.sleep(0.05)
    raise AssertionError(f"execution did not finish: {current}")


def bronze(api, table) -> DeltaTable:
    return DeltaTable(f"{api.settings.lake_root}/bronze/{table}")


def load_and_check(api, connection_id, db_type, table, expected_types, expected_rows):
    """Run the job twice; after each run every stored value and type must be as expected
    and the second run must store the same columns (no schema change)."""
    bronze_table = f"bronze_{db_type.replace('-', '_')}_{table}"
    workflow_id = create_job(api, connection_id, db_type, table, bronze_table)

    first = wait(api, start_run(api, workflow_id))
    assert first["status"] == "succeeded", first
    assert first["jobs"][0]["rowsWritten"] == len(expected_rows)
    stored = bronze(api, bronze_table)
    schema = pa.schema(stored.schema().to_arrow())
    assert_stored(stored.to_pyarrow_table(), expected_types, expected_rows)

    second = wait(api, start_run(api, workflow_id))
    assert second["status"] == "succeeded", second
    again = bronze(api, bronze_table)
    assert pa.schema(again.schema().to_arrow()).equals(schema, check_metadata=True)
    table_again = again.to_pyarrow_table()
    assert table_again.num_rows == 2 * len(expected_rows)
    latest = table_again.filter(pa.compute.equal(table_again.column("_execution_id"), second["id"]))
    assert_stored(latest, expected_types, expected_rows)


def assert_stored(table: pa.Table, expected_types: dict, expected_rows: dict) -> None:
    columns = [name for name in table.column_names if name not in AUDIT]
    assert columns == ["id", *expected_types], columns
    for name, data_type in expected_types.items():
        assert table.schema.field(name).type == data_type, (name, table.schema.field(name).type)
    rows = {row["id"]: row for row in table.to_pylist()}
    assert sorted(rows) == sorted(expected_rows)
    for row_id, expected in expected_rows.items():
        for name in expected_types:
            want = expected.get(name)
            got = rows[row_id][name]
            assert same(got, want), f"row {row_id}, column {name}: {got!r} != {want!r}"


def same(got, want) -> bool:
    """Equal value and equal Python type (1 == 1.0 == True is not good enough here)."""
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(same(g, w) for g, w in zip(got, want, strict=True))
        )
    return type(got) is type(want) and got == want


# === PostgreSQL ===============================================================================

PG_ZOO = """
CREATE TABLE zoo (
    id int4 PRIMARY KEY,
    i2 int2, i4 int4, i8 int8,
    n18 numeric(18,2), n numeric,
    r real, d double precision,
    b boolean,
    t text, vc varchar(10), ch char(5),
    dd date, tm time, ts timestamp(6), tstz timestamptz,
    iv interval,
    u uuid, js json, jb jsonb,
    by bytea,
    ia int[], ta text[]
);
INSERT INTO zoo VALUES
 (1, -32768, -2147483648, -9223372036854775808,
  -9999999999999999.99, -9999999999999999999999999999.9999999999,
  '-3.40282347e+38', -1.7976931348623157e308, false,
  '', 'ü€😀', 'a', '0001-01-01', '00:00:00', '0001-01-01 00:00:00',
  '0001-01-01 00:00:00+00', '-00:00:00.000001',
  '00000000-0000-0000-0000-000000000000', '[]', '{}', '', '{}', '{}'),
 (2, 32767, 2147483647, 9223372036854775807,
  9999999999999999.99, 9999999999999999999999999999.9999999999,
  '3.40282347e+38', 1.7976931348623157e308, true,
  E'line1\\nline2,"quoted" \\\\ ✓ 😀', 'abcdefghij', 'abcde', '9999-12-31',
  '23:59:59.999999', '9999-12-31 23:59:59.999999', '2024-03-10 12:34:56.123456+02',
  '1 year 2 mons 3 days 04:05:06.789',
  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"a":[1,2.5,null],  "b":"ü"}',
  '{"b": 1, "a": "x"}', '\\x00ff10', '{1,NULL,-2147483648}',
  '{"a,b","",NULL,"ü 😀","say \\"hi\\""}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 1, -1, 0.01, 0.0000000001, 'NaN', '-Infinity', true,
  ' ', 'x', 'xy z', '2024-02-29', '12:00:00.5', '2024-02-29 12:34:56.000001',
  '1969-12-31 23:59:59.999999+00', '-1 mons +2 days -00:00:01',
  '6ba7b810-9dad-11d1-80b4-00c04fd430c8', '"text"', 'null', '\\x00', '{0}', '{""}');
"""

PG_TYPES = {
    "i2": pa.int16(),
    "i4": pa.int32(),
    "i8": pa.int64(),
    "n18": pa.decimal128(18, 2),
    "n": pa.string(),  # numeric without precision: its exact text
    "r": pa.float32(),
    "d": pa.float64(),
    "b": pa.bool_(),
    "t": pa.string(),
    "vc": pa.string(),
    "ch": pa.string(),
    "dd": pa.date32(),
    "tm": pa.string(),  # time64[us] stored as HH:MM:SS.ffffff
    "ts": pa.timestamp("us"),
    "tstz": pa.timestamp("us", tz="UTC"),
    "iv": pa.int64(),  # duration[us] stored as int64 microseconds
    "u": pa.string(),
    "js": pa.string(),
    "jb": pa.string(),
    "by": pa.binary(),
    "ia": pa.list_(pa.field("element", pa.int32())),
    "ta": pa.list_(pa.field("element", pa.string())),
}

PG_ROWS = {
    1: {
        "i2": -32768,
        "i4": -2147483648,
        "i8": -9223372036854775808,
        "n18": Decimal("-9999999999999999.99"),
        "n": "-9999999999999999999999999999.9999999999",
        "r": f32(-3.40282347e38),
        "d": -1.7976931348623157e308,
        "b": False,
        "t": "",  # an empty string stays apart from NULL
        "vc": "ü€😀",
        "ch": "a    ",  # char(n) is blank-padded by PostgreSQL itself
        "dd": dt.date(1, 1, 1),
        "tm": "00:00:00.000000",
        "ts": dt.datetime(1, 1, 1),
        "tstz": dt.datetime(1, 1, 1, tzinfo=UTC),
        "iv": -1,
        "u": "00000000-0000-0000-0000-000000000000",
        "js": "[]",
        "jb": "{}",
        "by": b"",
        "ia": [],
        "ta": [],
    },
    2: {
        "i2": 32767,
        "i4": 2147483647,
        "i8": 9223372036854775807,
        "n18": Decimal("9999999999999999.99"),
        "n": "9999999999999999999999999999.9999999999",
        "r": f32(3.40282347e38),
        "d": 1.7976931348623157e308,
        "b": True,
        "t": 'line1\nline2,"quoted" \\ ✓ 😀',
        "vc": "abcdefghij",
        "ch": "abcde",
        "dd": dt.date(9999, 12, 31),
        "tm": "23:59:59.999999",
        "ts": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "tstz": dt.datetime(2024, 3, 10, 10, 34, 56, 123456, tzinfo=UTC),
        # psycopg's rule, documented: a month is 30 days (14 months + 3 days = 423 days)
        "iv": micros(days=423, hours=4, minutes=5, seconds=6, milliseconds=789),
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        # json keeps the text as written; jsonb is PostgreSQL's own normalised text
        "js": '{"a":[1,2.5,null],  "b":"ü"}',
        "jb": '{"a": "x", "b": 1}',
        "by": b"\x00\xff\x10",
        "ia": [1, None, -2147483648],
        "ta": ["a,b", "", None, "ü 😀", 'say "hi"'],
    },
    3: {},  # every column NULL
    4: {
        "i2": 0,
        "i4": 1,
        "i8": -1,
        "n18": Decimal("0.01"),
        "n": "0.0000000001",
        "r": math.nan,
        "d": -math.inf,
        "b": True,
        "t": " ",
        "vc": "x",
        "ch": "xy z ",
        "dd": dt.date(2024, 2, 29),
        "tm": "12:00:00.500000",
        "ts": dt.datetime(2024, 2, 29, 12, 34, 56, 1),
        "tstz": dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "iv": micros(days=-30 + 2, seconds=-1),
        "u": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "js": '"text"',
        "jb": "null",
        "by": b"\x00",
        "ia": [0],
        "ta": [""],
    },
}


@pytest.fixture(scope="module")
def pg_database():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"ff_zoo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as connection:
        connection.execute(PG_ZOO)
    yield name
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def save_pg(api, database) -> str:
    return save_connection(
        api,
        type="postgresql",
        host="127.0.0.1",
        port=5432,
        database=database,
        username="postgres",
    )


def test_postgres_type_zoo_lands_in_bronze_exactly(api, pg_database):
    load_and_check(api, save_pg(api, pg_database), "postgresql", "zoo", PG_TYPES, PG_ROWS)


# === MariaDB ==================================================================================

MY_ZOO = """
CREATE TABLE zoo (
    id INT PRIMARY KEY,
    tu TINYINT UNSIGNED, si SMALLINT, iu INT UNSIGNED, bu BIGINT UNSIGNED,
    dec38 DECIMAL(38,10), f FLOAT, d DOUBLE, flag BIT(1),
    dd DATE, tm TIME(6), dtm DATETIME(6), tsp TIMESTAMP(6) NULL DEFAULT NULL,
    zd DATE, zdt DATETIME,
    e ENUM('small','large'), s SET('a','b','c'), j JSON, vb VARBINARY(16), txt TEXT
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin
"""
MY_INSERT = [
    "(1, 0, -32768, 0, 0, -9999999999999999999999999999.9999999999, -1.5, "
    "-1.7976931348623157e308, b'0', '1000-01-01', '-838:59:59.000000', "
    "'1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '0000-00-00', "
    "'0000-00-00 00:00:00', 'small', '', '[]', x'', '')",
    "(2, 255, 32767, 4294967295, 18446744073709551615, "
    "9999999999999999999999999999.9999999999, 3.5, 1.7976931348623157e308, b'1', "
    "'9999-12-31', '838:59:59.000000', '9999-12-31 23:59:59.999999', "
    "'2038-01-19 03:14:07.999999', '2024-00-10', '2024-02-29 12:34:56', 'large', 'a,c', "
    '\'{"a": [1, 2], "ü": "😀"}\', x\'00ff10\', \'emoji 😀 ü€ "quoted"\\nnext line\')',
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL)",
    "(4, 127, 0, 2147483648, 9223372036854775808, 0.0000000001, 0.25, 0.1, b'1', "
    "'2024-02-29', '12:34:56.123456', '2024-02-29 12:34:56.000001', "
    "'2024-03-10 10:34:56.654321', '2024-02-29', '2024-02-29 00:00:00', 'small', 'b', "
    "'null', x'00', ' ')",
]

MY_TYPES = {
    "tu": pa.int16(),  # uint8 widened
    "si": pa.int16(),
    "iu": pa.int64(),  # uint32 widened
    "bu": pa.decimal128(20, 0),  # uint64 as an exact decimal
    "dec38": pa.decimal128(38, 10),
    "f": pa.float32(),
    "d": pa.float64(),
    "flag": pa.bool_(),
    "dd": pa.date32(),
    "tm": pa.int64(),  # TIME is a signed duration: int64 microseconds
    "dtm": pa.timestamp("us"),
    "tsp": pa.timestamp("us", tz="UTC"),
    "zd": pa.date32(),
    "zdt": pa.timestamp("us"),
    "e": pa.string(),
    "s": pa.string(),
    "j": pa.string(),
    "vb": pa.binary(),
    "txt": pa.string(),
}

MY_ROWS = {
    1: {
        "tu": 0,
        "si": -32768,
        "iu": 0,
        "bu": Decimal(0),
        "dec38": Decimal("-9999999999999999999999999999.9999999999"),
        "f": -1.5,
        "d": -1.7976931348623157e308,
        "flag": False,
        "dd": dt.date(1000, 1, 1),
        "tm": -micros(hours=838, minutes=59, seconds=59),
        "dtm": dt.datetime(1000, 1, 1),
        "tsp": dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        "zd": None,  # zero dates are NULL (documented)
        "zdt": None,
        "e": "small",
        "s": "",
        "j": "[]",
        "vb": b"",
        "txt": "",
    },
    2: {
        "tu": 255,
        "si": 32767,
        "iu": 4294967295,
        "bu": Decimal("18446744073709551615"),
        "dec38": Decimal("9999999999999999999999999999.9999999999"),
        "f": 3.5,
        "d": 1.7976931348623157e308,
        "flag": True,
        "dd": dt.date(9999, 12, 31),
        "tm": micros(hours=838, minutes=59, seconds=59),
        "dtm": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "tsp": dt.datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC),
        "zd": None,  # 2024-00-10 is a zero date too
        "zdt": dt.datetime(2024, 2, 29, 12, 34, 56),
        "e": "large",
        "s": "a,c",
        "j": '{"a": [1, 2], "ü": "😀"}',  # MariaDB's JSON is text, kept as written
        "vb": b"\x00\xff\x10",
        "txt": 'emoji 😀 ü€ "quoted"\nnext line',
    },
    3: {},
    4: {
        "tu": 127,
        "si": 0,
        "iu": 2147483648,
        "bu": Decimal("9223372036854775808"),  # one past int64
        "dec38": Decimal("0.0000000001"),
        "f": 0.25,
        "d": 0.1,
        "flag": True,
        "dd": dt.date(2024, 2, 29),
        "tm": micros(hours=12, minutes=34, seconds=56, microseconds=123456),
        "dtm": dt.datetime(2024, 2, 29, 12, 34, 56, 1),
        "tsp": dt.datetime(2024, 3, 10, 10, 34, 56, 654321, tzinfo=UTC),
        "zd": dt.date(2024, 2, 29),
        "zdt": dt.datetime(2024, 2, 29),
        "e": "small",
        "s": "b",
        "j": "null",
        "vb": b"\x00",
        "txt": " ",
    },
}


@pytest.fixture(scope="module")
def mariadb_database():
    require_service("MariaDB", "127.0.0.1", 3306)
    import pymysql

    name = f"ff_zoo_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4", autocommit=True
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cursor.execute(f"USE `{name}`")
            # zero dates need a permissive sql_mode; TIMESTAMP values are given in UTC
            cursor.execute("SET SESSION sql_mode = ''")
            cursor.execute("SET time_zone = '+00:00'")
            cursor.execute(MY_ZOO)
            cursor.execute("INSERT INTO zoo VALUES " + ",\n".join(MY_INSERT))
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


def test_mariadb_type_zoo_lands_in_bronze_exactly(api, mariadb_database):
    connection_id = save_connection(
        api,
        type="mysql",
        host="127.0.0.1",
        port=3306,
        database=mariadb_database,
        username="root",
    )
    load_and_check(api, connection_id, "mysql", "zoo", MY_TYPES, MY_ROWS)


# === SQLite ===================================================================================

SQLITE_TYPES = {
    "i": pa.int64(),
    "r": pa.float64(),
    "t": pa.string(),
    "b": pa.binary(),
    "n": pa.decimal128(38, 10),
}
SQLITE_ROWS = {
    1: {
        "i": -9223372036854775808,
        "r": -1.7976931348623157e308,
        "t": "",
        "b": b"",
        "n": Decimal("-0.5"),
    },
    2: {
        "i": 9223372036854775807,
        "r": 5e-324,
        "t": 'ü€😀\nline 2, "quoted"',
        "b": b"\x00\xff\x10",
        "n": Decimal("12.34"),  # stored by SQLite as REAL 12.34: its shortest text
    },
    3: {},
    4: {"i": 0, "r": 0.1, "t": " ", "b": b"\x00", "n": Decimal("42")},
}


def test_sqlite_type_zoo_lands_in_bronze_exactly(api):
    sources = api.settings.sqlite_root
    sources.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(sources / "zoo.db") as connection:
        connection.execute(
            "CREATE TABLE zoo (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, "
            "n NUMERIC)"
        )
        for row_id, row in SQLITE_ROWS.items():
            connection.execute(
                "INSERT INTO zoo VALUES (?, ?, ?, ?, ?, ?)",
                (row_id, *(row.get(name) for name in ("i", "r", "t", "b")), _sqlite_n(row)),
            )
    connection.close()
    connection_id = save_connection(api, type="sqlite", database="zoo.db")
    load_and_check(api, connection_id, "sqlite", "zoo", SQLITE_TYPES, SQLITE_ROWS)


def _sqlite_n(row: dict):
    """What a program would store in a NUMERIC column: an int, a float, nothing."""
    value = row.get("n")
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


# === a connection killed mid-read =============================================================

BIG_ROWS = 300_000
GATE_AT = 250_000  # ~10 MB of rows reach FlowForge before the read waits here


@pytest.fixture
def pg_big(pg_database):
    """``big``: 300,000 rows; ``big_gated``: the same rows through a gate that makes the read
    wait at row 250,000 while advisory lock 4242 is held, so the test knows the read is
    under way (and not finished) when it kills the connection."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg_database}") as connection:
        connection.execute(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS label "
            f"FROM generate_series(1, {BIG_ROWS}) g"
        )
        connection.execute(
            "CREATE FUNCTION gate(i int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$ "
            f"BEGIN IF i = {GATE_AT} THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF; "
            "RETURN true; END $$"
        )
        connection.execute("CREATE VIEW big_gated AS SELECT * FROM big WHERE gate(id)")
    return pg_database


def test_a_connection_killed_mid_read_is_retried_and_lands_each_row_once(tmp_path, pg_big):
    import psycopg

    app, api = start_app(tmp_path, task_retry_backoff=0.1)
    try:
        workflow_id = create_job(
            api, save_pg(api, pg_big), "postgresql", "big_gated", "bronze_big", 10_000
        )
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg_big}") as killer:
            killer.autocommit = True
            killer.execute("SELECT pg_advisory_lock(4242)")
            execution_id = start_run(api, workflow_id)
            job = _wait_for_rows(api, execution_id)
            assert 0 < job["rowsRead"] < BIG_ROWS
            killed = killer.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            assert killed >= 1
            killer.execute("SELECT pg_advisory_unlock(4242)")
        done = wait(api, execution_id)
        assert done["status"] == "succeeded", done
        assert done["jobs"][0]["attempt"] >= 2
        assert done["jobs"][0]["rowsWritten"] == BIG_ROWS

        table = bronze(api, "bronze_big")
        # One data commit (after the empty table the first attempt created): the killed
        # attempt wrote nothing.
        assert [e["operation"] for e in table.history()] == ["WRITE", "CREATE TABLE"]
        ids = table.to_pyarrow_table(columns=["id"]).column("id")
        assert len(ids) == BIG_ROWS
        assert pa.compute.count_distinct(ids).as_py() == BIG_ROWS
        assert (pa.compute.min(ids).as_py(), pa.compute.max(ids).as_py()) == (1, BIG_ROWS)
    finally:
        api.__exit__(None, None, None)
        app.state.database.dispose()


def _wait_for_rows(api, execution_id, seconds=60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = execution(api, execution_id)
        jobs = current.get("jobs") or []
        if jobs and jobs[0]["status"] == "running" and jobs[0]["rowsRead"] > 0:
            return jobs[0]
        assert current["status"] not in ("succeeded", "failed", "cancelled"), current
        time.sleep(0.05)
    raise AssertionError(f"the job never reported rows: {execution(api, execution_id)}")

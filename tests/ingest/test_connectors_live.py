"""The PostgreSQL and MariaDB connectors against the real servers of this machine (each test
session works in a fresh database it drops at the end), and the Oracle and Snowflake
connectors: their arguments and SQL here, live only when FLOWFORGE_TEST_ORACLE_URL /
FLOWFORGE_TEST_SNOWFLAKE_URL name a server.

Under CI=true a missing PostgreSQL or MariaDB fails the run instead of skipping it.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from flowforge_ingest.connectors.arrowing import SourceDataError, SourceQueryError
from flowforge_ingest.connectors.base import (
    ConnectError,
    ConnectFailure,
    ConnectionParams,
    SourceReadError,
)
from flowforge_ingest.connectors.postgresql_arrow import statement_text
from flowforge_ingest.connectors.registry import connector_for
from flowforge_ingest.connectors.sql import plan_read
from tests.conftest import free_port, require_service
from tests.ingest.connector_fixtures import (
    AWKWARD_PASSWORD,
    assert_hides,
    listener,
    params_from_env,
)

UTC = dt.UTC
PG_HOST, PG_PORT = "127.0.0.1", 5432
MY_HOST, MY_PORT = "127.0.0.1", 3306


def read_all(connector, conn, sql, params=None, batch_size=1000, columns=None):
    stream = connector.execute_batches(conn, sql, params, batch_size, columns)
    batches = list(stream)
    return stream.schema, batches, pa.Table.from_batches(batches, schema=stream.schema)


# === PostgreSQL ===============================================================================

PG_ZOO = """
CREATE TABLE zoo (
    id integer PRIMARY KEY,
    n_free numeric,
    n_fixed numeric(38,10),
    amount numeric(18,2) NOT NULL,
    tz timestamptz,
    ts timestamp,
    d date,
    tm time,
    u uuid,
    j jsonb,
    arr integer[],
    b bytea,
    iv interval,
    t text,
    vc varchar(20),
    flag boolean,
    f8 double precision,
    f4 real,
    big bigint,
    small smallint
);
INSERT INTO zoo VALUES
 (1, 12345678901234567890.0123456789, 1234567890123456789012345678.0123456789, 12.34,
  '2024-03-10 12:34:56.123456+02', '2024-03-10 12:34:56.654321', '2024-02-29',
  '23:59:59.999999', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2], "b": "x"}',
  '{1,2,NULL}', '\\x00ff10', '1 day 02:03:04.5', E'line1\\nline2,"quoted"', '', true, 0.1,
  1.5, 9223372036854775807, -32768),
 (2, NULL, NULL, -0.01, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL),
 (3, -0.5, 0, 0, '1970-01-01 00:00:00+00', '0001-01-01 00:00:00', '1970-01-01', '00:00',
  '00000000-0000-0000-0000-000000000000', '[]', '{}', '', '-00:00:01', 'O''Brien', 'ä€',
  false, -1e308, -0.25, -1, 0);
CREATE VIEW zoo_names AS SELECT id, t FROM zoo;
ANALYZE zoo;
"""

PG_EXPECTED = {
    1: {
        "n_free": "12345678901234567890.0123456789",
        "n_fixed": Decimal("1234567890123456789012345678.0123456789"),
        "amount": Decimal("12.34"),
        "tz": dt.datetime(2024, 3, 10, 10, 34, 56, 123456, tzinfo=UTC),
        "ts": dt.datetime(2024, 3, 10, 12, 34, 56, 654321),
        "d": dt.date(2024, 2, 29),
        "tm": dt.time(23, 59, 59, 999999),
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": '{"a": [1, 2], "b": "x"}',
        "arr": [1, 2, None],
        "b": b"\x00\xff\x10",
        "iv": dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000),
        "t": 'line1\nline2,"quoted"',
        "vc": "",
        "flag": True,
        "f8": 0.1,
        "f4": 1.5,
        "big": 9223372036854775807,
        "small": -32768,
    },
    3: {
        "n_free": "-0.5",
        "n_fixed": Decimal("0"),
        "amount": Decimal("0"),
        "tz": dt.datetime(1970, 1, 1, tzinfo=UTC),
        "ts": dt.datetime(1, 1, 1),
        "d": dt.date(1970, 1, 1),
        "tm": dt.time(0, 0),
        "u": "00000000-0000-0000-0000-000000000000",
        "j": "[]",
        "arr": [],
        "b": b"",
        "iv": dt.timedelta(seconds=-1),
        "t": "O'Brien",
        "vc": "ä€",
        "flag": False,
        "f8": -1e308,
        "f4": -0.25,
        "big": -1,
        "small": 0,
    },
}


@pytest.fixture(scope="module")
def pg_database():
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    name = f"ff_connectors_{uuid.uuid4().hex[:10]}"
    role = f"ff_nologin_{uuid.uuid4().hex[:8]}"
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        connection.execute(f"CREATE ROLE \"{role}\" NOLOGIN PASSWORD '{role}x'")
    with psycopg.connect(f"{admin.replace('dbname=postgres', '')} dbname={name}") as connection:
        connection.execute(PG_ZOO)
        connection.execute(
            "CREATE TABLE wide AS SELECT g AS id, md5(g::text) AS label "
            "FROM generate_series(1, 20000) g"
        )
        connection.execute(
            "CREATE FUNCTION zoo_after(low integer, note text DEFAULT '') "
            "RETURNS SETOF zoo LANGUAGE sql STABLE AS 'SELECT * FROM zoo WHERE id > low'"
        )
        connection.execute(
            "CREATE FUNCTION zoo_scaled(factor numeric, ratio real, cutoff double precision) "
            "RETURNS TABLE(id integer, scaled numeric, kept boolean) LANGUAGE sql STABLE AS "
            "'SELECT id, id * factor, id * ratio <= cutoff FROM zoo ORDER BY id'"
        )
    yield {"name": name, "role": role}
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'DROP ROLE IF EXISTS "{role}"')


def pg_params(database: str, **changes) -> ConnectionParams:
    values = {
        "db_type": "postgresql",
        "host": "localhost",
        "port": PG_PORT,
        "database": database,
        "username": "postgres",
        "resolved_addresses": (PG_HOST,),
        "options": {"connectTimeout": "3"},
    }
    values.update(changes)
    return ConnectionParams(**values)


@pytest.fixture
def pg(pg_database):
    connector = connector_for("postgresql")
    with connector.connect(pg_params(pg_database["name"])) as conn:
        yield connector, conn


def test_postgres_connects_in_utc_read_only_sessions(pg):
    connector, conn = pg
    assert connector.server_version(conn).startswith("PostgreSQL 1")
    with conn.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        assert cursor.fetchone()[0] == "UTC"
        with pytest.raises(Exception, match="read-only transaction"):
            cursor.execute("CREATE TABLE nope (a int)")
    conn.rollback()


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"database": "no_such_database_here"}, ConnectFailure.DATABASE),
        ({"port": "free"}, ConnectFailure.REFUSED),
        ({"host": "no-such-host.invalid", "resolved_addresses": ()}, ConnectFailure.UNREACHABLE),
        ({"options": {"sslmode": "require", "connectTimeout": "3"}}, ConnectFailure.TLS),
    ],
    ids=["unknown-database", "refused-port", "unknown-host", "tls-not-offered"],
)
def test_postgres_connect_failures_are_told_apart(pg_database, changes, kind):
    if changes.get("port") == "free":
        changes = {**changes, "port": free_port()}
    params = pg_params(**{"database": pg_database["name"], "password": AWKWARD_PASSWORD, **changes})
    with pytest.raises(ConnectError) as caught:
        connector_for("postgresql").connect(params)
    assert caught.value.kind is kind, caught.value.detail
    assert_hides(caught.value, AWKWARD_PASSWORD)


def test_postgres_login_refused_is_a_login_failure_without_the_password(pg_database):
    # This machine's pg_hba trusts 127.0.0.1 (a wrong password would be ignored), so the
    # server's login refusal is produced by a role that may not log in.
    params = pg_params(pg_database["name"], username=pg_database["role"], password=AWKWARD_PASSWORD)
    with pytest.raises(ConnectError) as caught:
        connector_for("postgresql").connect(params)
    assert caught.value.kind is ConnectFailure.LOGIN
    assert pg_database["role"] in caught.value.message
    assert_hides(caught.value, AWKWARD_PASSWORD)


def test_postgres_refuses_a_listener_that_is_not_postgres(pg_database):
    with listener("http") as port:
        params = pg_params(pg_database["name"], port=port, password=AWKWARD_PASSWORD)
        with pytest.raises(ConnectError) as caught:
            connector_for("postgresql").connect(params)
    assert caught.value.kind is ConnectFailure.PROTOCOL, caught.value.detail
    assert_hides(caught.value, AWKWARD_PASSWORD)


def test_postgres_lists_tables_and_views_with_estimates(pg):
    connector, conn = pg
    tables = {table.name: table for table in connector.list_tables(conn, "public")}
    assert tables["zoo"].kind == "table" and tables["zoo"].estimated_rows == 3
    assert tables["zoo_names"].kind == "view" and tables["zoo_names"].estimated_rows is None
    assert tables["zoo"].schema == "public"
    assert connector.list_tables(conn, "no_such_schema") == []


def test_postgres_describes_every_type_of_the_zoo(pg):
    connector, conn = pg
    columns = {column.name: column for column in connector.describe(conn, "public", "zoo")}
    expected = {
        "id": ("integer", "int32"),
        "n_free": ("numeric", "string"),
        "n_fixed": ("numeric(38,10)", "decimal128(38, 10)"),
        "amount": ("numeric(18,2)", "decimal128(18, 2)"),
        "tz": ("timestamp with time zone", "timestamp[us, tz=UTC]"),
        "u": ("uuid", "string"),
        "j": ("jsonb", "string"),
        "arr": ("integer[]", "list<item: int32>"),
        "b": ("bytea", "binary"),
        "iv": ("interval", "duration[us]"),
        "vc": ("character varying(20)", "string"),
    }
    for name, (source, arrow) in expected.items():
        assert (columns[name].source_type, columns[name].arrow_type) == (source, arrow), name
    assert columns["id"].primary_key and not columns["id"].nullable
    assert not columns["amount"].nullable and not columns["amount"].primary_key
    assert columns["t"].nullable
    assert (columns["amount"].precision, columns["amount"].scale) == (18, 2)
    assert columns["vc"].max_length == 20
    with pytest.raises(SourceQueryError, match="does not exist"):
        connector.describe(conn, "public", "no_such_table")


@pytest.mark.parametrize("with_columns", [False, True], ids=["description", "described"])
def test_postgres_round_trips_the_zoo_exactly(pg, with_columns):
    connector, conn = pg
    columns = connector.describe(conn, "public", "zoo") if with_columns else None
    schema, _batches, table = read_all(
        connector, conn, "SELECT * FROM zoo ORDER BY id", columns=columns
    )
    assert str(schema.field("tz").type) == "timestamp[us, tz=UTC]"
    assert schema.field("n_fixed").type == pa.decimal128(38, 10)
    rows = {row["id"]: row for row in table.to_pylist()}
    for row_id, expected in PG_EXPECTED.items():
        for name, value in expected.items():
            assert rows[row_id][name] == value, (row_id, name)
            assert type(rows[row_id][name]) is type(value), (row_id, name)
    assert all(value is None for key, value in rows[2].items() if key not in ("id", "amount"))
    assert rows[2]["amount"] == Decimal("-0.01")


def test_postgres_binds_parameters_and_reads_set_returning_functions(pg):
    connector, conn = pg
    _schema, _batches, table = read_all(
        connector, conn, "SELECT id, t FROM zoo WHERE t = %(name)s", {"name": "O'Brien"}
    )
    assert table.to_pylist() == [{"id": 3, "t": "O'Brien"}]
    _schema, _batches, table = read_all(
        connector, conn, "SELECT id FROM zoo_after(%(low)s) ORDER BY id", {"low": 1}
    )
    assert table.column("id").to_pylist() == [2, 3]
    procedures = {procedure.name: procedure for procedure in connector.procedures(conn)}
    parameters = procedures["zoo_after"].parameters
    assert [(p.name, p.source_type, p.direction) for p in parameters] == [
        ("low", "integer", "in"),
        ("note", "text", "in"),
    ]


def test_postgres_function_takes_fractional_arguments_for_numeric_real_and_double(pg):
    # a JSON number like 1.5 must find a function declared numeric/real/double precision;
    # bound as double precision it found only the last
    connector, conn = pg
    plan = plan_read(
        "postgresql",
        schema="public",
        procedure="zoo_scaled",
        parameters={"factor": 1.5, "ratio": 0.5, "cutoff": 1.25},
    )
    _schema, _batches, table = read_all(connector, conn, plan.sql, plan.params)
    rows = table.to_pylist()
    assert [row["id"] for row in rows] == [1, 2, 3]
    # an unconstrained numeric arrives as its exact text
    assert [Decimal(row["scaled"]) for row in rows] == [Decimal("1.5"), Decimal(3), Decimal("4.5")]
    assert [row["kept"] for row in rows] == [True, True, False]
    # the ADBC path merges the values into the text on the client; the same call must resolve
    text = statement_text(conn, plan.sql, plan.params)
    _schema, _batches, table = read_all(connector, conn, text)
    assert [Decimal(row["scaled"]) for row in table.to_pylist()] == [
        Decimal("1.5"),
        Decimal(3),
        Decimal("4.5"),
    ]


@pytest.mark.parametrize("batch_size", [1, 3, 7000])
def test_postgres_batches_never_exceed_batch_size(pg, batch_size):
    connector, conn = pg
    sql = "SELECT id, label FROM wide WHERE id > %(low)s ORDER BY id"
    _schema, batches, table = read_all(connector, conn, sql, {"low": 0}, batch_size)
    assert table.num_rows == 20000
    assert all(0 < batch.num_rows <= batch_size for batch in batches)
    assert table.column("id").to_pylist() == list(range(1, 20001))
    if batch_size == 3:
        assert len(batches) >= 20000 // 3


def test_postgres_stream_closed_early_leaves_the_connection_usable(pg):
    connector, conn = pg
    stream = connector.execute_batches(conn, "SELECT * FROM wide", None, 10)
    first = next(iter(stream))
    stream.close()
    assert first.num_rows == 10
    assert connector.list_tables(conn, "public")


def test_postgres_query_timeout_is_a_permanent_query_error(pg_database):
    connector = connector_for("postgresql")
    params = pg_params(pg_database["name"], options={"connectTimeout": "3", "queryTimeout": "1"})
    with connector.connect(params) as conn:
        with pytest.raises(SourceQueryError, match="queryTimeout"):
            read_all(connector, conn, "SELECT pg_sleep(3)")


# Plain types only: read through ADBC's binary COPY; an interval column keeps the CSV COPY.
# Rows wide enough that what the client has buffered when the server dies is a small part.
KILL_QUERIES = {
    "binary": "SELECT g, md5(g::text) FROM (SELECT generate_series(1, 3000000) AS g) s",
    "csv": "SELECT g, g * interval '1 second' AS iv, repeat('x', 200) AS pad "
    "FROM generate_series(1, 3000000) AS g",
}


@pytest.mark.parametrize("path", sorted(KILL_QUERIES))
def test_postgres_connection_killed_mid_read_is_transient(pg, pg_database, path):
    import psycopg

    connector, conn = pg
    stream = connector.execute_batches(conn, KILL_QUERIES[path], None, 500)
    batches = iter(stream)
    next(batches)
    with psycopg.connect(
        f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres", autocommit=True
    ) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (pg_database["name"],),
        ).fetchone()[0]
    assert killed >= 1
    with pytest.raises(SourceReadError) as caught:
        for _batch in batches:
            pass
    assert caught.value.retryable


PLAIN_COLUMNS = "id, n_free, n_fixed, amount, tz, ts, d, tm, t, vc, flag, f8, f4, big, small"


def _copy_formats(pg_database) -> list[str]:
    import psycopg

    with psycopg.connect(
        f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres", autocommit=True
    ) as admin:
        rows = admin.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = %s AND query LIKE 'COPY (%%'",
            (pg_database["name"],),
        ).fetchall()
    return [("binary" if "format binary" in query.lower() else "csv") for (query,) in rows]


def test_postgres_plain_columns_stream_as_binary_and_equal_the_csv_path(pg, pg_database):
    connector, conn = pg
    binary = connector.execute_batches(conn, f"SELECT {PLAIN_COLUMNS} FROM zoo", None, 1)
    csv = connector.execute_batches(conn, f"SELECT {PLAIN_COLUMNS}, u FROM zoo", None, 1)
    try:
        binary_batches, csv_batches = iter(binary), iter(csv)
        first = [next(binary_batches)]
        assert _copy_formats(pg_database) == ["binary"]
        first_csv = [next(csv_batches)]
        assert sorted(_copy_formats(pg_database)) == ["binary", "csv"]
        binary_rows = pa.Table.from_batches(first + list(binary_batches)).to_pylist()
        csv_rows = pa.Table.from_batches(first_csv + list(csv_batches)).to_pylist()
    finally:
        binary.close()
        csv.close()
    assert binary.schema == csv.schema.remove(csv.schema.get_field_index("u"))
    assert binary_rows == [
        {key: value for key, value in row.items() if key != "u"} for row in csv_rows
    ]
    by_id = {row["id"]: row for row in binary_rows}
    for name in ("n_fixed", "tz", "ts", "tm", "f8"):
        assert by_id[1][name] == PG_EXPECTED[1][name], name


@pytest.mark.parametrize("path", ["binary", "csv"])
def test_postgres_unconstrained_numeric_lands_as_exact_text_nan_included(pg, path):
    connector, conn = pg
    extra = ", 1::int AS one" if path == "binary" else ", interval '1 day' AS iv"
    values = "(NULL), (123.456), ('NaN'), ('Infinity'), ('-Infinity'), (1e40), (1e-21), (1.50)"
    sql = f"SELECT v::numeric AS v{extra} FROM (VALUES {values}) AS x(v)"
    assert read_all(connector, conn, sql)[2].column("v").to_pylist() == [
        None,
        "123.456",
        "NaN",
        "Infinity",
        "-Infinity",
        "1" + "0" * 40,
        "0.000000000000000000001",
        "1.50",
    ]


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("'infinity'::timestamptz", "infinity"),
        ("'-infinity'::timestamp", "-infinity"),
        ("'infinity'::date", "infinity"),
        ("'24:00:00'::time", "24:00:00"),
    ],
)
@pytest.mark.parametrize("path", ["binary", "csv"])
def test_postgres_values_arrow_cannot_hold_are_refused(pg, expression, shown, path):
    connector, conn = pg
    extra = ", 1::int AS one" if path == "binary" else ", interval '1 day' AS iv"
    sql = f"SELECT v{extra} FROM (VALUES (NULL), ({expression})) AS x(v)"
    with pytest.raises(SourceDataError, match="column 'v' holds") as caught:
        read_all(connector, conn, sql)
    if path == "binary":  # ADBC spells NaN 'nan'
        assert repr(shown).lower() in str(caught.value).lower()


# === MariaDB ==================================================================================

MY_ZOO = """
CREATE TABLE zoo (
    id INT PRIMARY KEY,
    ubig BIGINT UNSIGNED,
    utiny TINYINT UNSIGNED,
    amount DECIMAL(38,10) NOT NULL,
    dt6 DATETIME(6),
    d DATE,
    zero_d DATE,
    zero_dt DATETIME,
    tm TIME,
    size ENUM('small','large'),
    tags SET('a','b','c'),
    bits BIT(10),
    flag BIT(1),
    ts TIMESTAMP(3) NULL,
    vc VARCHAR(20),
    txt TEXT,
    bin VARBINARY(8),
    f DOUBLE
)
"""
MY_ROWS = [
    "(1, 18446744073709551615, 255, 1234567890123456789012345678.0123456789, "
    "'2024-03-10 12:34:56.654321', '2024-02-29', '0000-00-00', '0000-00-00 00:00:00', "
    "'-838:59:59', 'large', 'a,c', b'1011', b'1', '2024-03-10 10:34:56.123', '', 'x\\ny', "
    "x'00ff10', 0.1)",
    "(2, NULL, NULL, -0.0000000001, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL)",
    "(3, 0, 0, 0, '1000-01-01 00:00:00', '2024-00-10', '9999-12-31', '2024-01-01 00:00:00', "
    "'25:00:00.5', 'small', '', b'0', b'0', '1970-01-01 00:00:01', 'O''Brien', 'ä€', x'', -2.5)",
]
MY_EXPECTED = {
    1: {
        "ubig": 18446744073709551615,
        "utiny": 255,
        "amount": Decimal("1234567890123456789012345678.0123456789"),
        "dt6": dt.datetime(2024, 3, 10, 12, 34, 56, 654321),
        "d": dt.date(2024, 2, 29),
        "zero_d": None,
        "zero_dt": None,
        "tm": -dt.timedelta(hours=838, minutes=59, seconds=59),
        "size": "large",
        "tags": "a,c",
        "bits": 11,
        "flag": True,
        "ts": dt.datetime(2024, 3, 10, 10, 34, 56, 123000, tzinfo=UTC),
        "vc": "",
        "txt": "x\ny",
        "bin": b"\x00\xff\x10",
        "f": 0.1,
    },
    3: {
        "ubig": 0,
        "utiny": 0,
        "amount": Decimal("0E-10"),
        "dt6": dt.datetime(1000, 1, 1),
        "d": None,
        "zero_d": dt.date(9999, 12, 31),
        "zero_dt": dt.datetime(2024, 1, 1),
        "tm": dt.timedelta(hours=25),  # TIME keeps no fraction: the server cut .5
        "size": "small",
        "tags": "",
        "bits": 0,
        "flag": False,
        "ts": dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        "vc": "O'Brien",
        "txt": "ä€",
        "bin": b"",
        "f": -2.5,
    },
}


def mariadb_admin(database: str | None = None):
    import pymysql

    return pymysql.connect(
        host=MY_HOST, port=MY_PORT, user="root", password="", database=database, autocommit=True
    )


@pytest.fixture(scope="module")
def my_database():
    require_service("MariaDB", MY_HOST, MY_PORT)
    name = f"ff_connectors_{uuid.uuid4().hex[:10]}"
    user = f"ff_user_{uuid.uuid4().hex[:8]}"
    secret = f"right-{uuid.uuid4().hex}"
    admin = mariadb_admin()
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{secret}'")
        cursor.execute(f"GRANT SELECT ON `{name}`.* TO '{user}'@'127.0.0.1'")
        cursor.execute(f"USE `{name}`")
        cursor.execute("SET SESSION sql_mode = ''")  # zero dates allowed
        cursor.execute("SET SESSION time_zone = '+00:00'")
        cursor.execute(MY_ZOO)
        cursor.execute("INSERT INTO zoo VALUES " + ", ".join(MY_ROWS))
        cursor.execute("CREATE VIEW zoo_names AS SELECT id, vc FROM zoo")
        cursor.execute("CREATE TABLE wide (id INT PRIMARY KEY, label CHAR(32))")
        cursor.execute("INSERT INTO wide SELECT seq, md5(seq) FROM seq_1_to_20000")
        cursor.execute("ANALYZE TABLE zoo, wide")
        cursor.fetchall()
        cursor.execute(
            "CREATE PROCEDURE zoo_after(IN low INT, OUT total BIGINT) "
            "SELECT COUNT(*) INTO total FROM zoo WHERE id > low"
        )
    yield {"name": name, "user": user, "secret": secret}
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
    admin.close()


def my_params(database: str, **changes) -> ConnectionParams:
    values = {
        "db_type": "mysql",
        "host": "localhost",
        "port": MY_PORT,
        "database": database,
        "username": "root",
        "password": "",
        "resolved_addresses": (MY_HOST,),
        "options": {"connectTimeout": "3"},
    }
    values.update(changes)
    return ConnectionParams(**values)


@pytest.fixture
def my(my_database):
    connector = connector_for("mysql")
    conn = connector.connect(my_params(my_database["name"]))
    yield connector, conn
    if conn.open:  # a test may have had it killed
        conn.close()


def test_mariadb_connects_in_utc_read_only_sessions(my):
    connector, conn = my
    assert connector.server_version(conn).startswith("MariaDB 10.")
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@session.time_zone")
        assert cursor.fetchone()[0] == "+00:00"
        with pytest.raises(Exception, match="READ ONLY"):
            cursor.execute("CREATE TABLE nope (a INT)")


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"database": "no_such_database_here"}, ConnectFailure.DATABASE),
        ({"port": "free"}, ConnectFailure.REFUSED),
        ({"host": "no-such-host.invalid", "resolved_addresses": ()}, ConnectFailure.UNREACHABLE),
        ({"options": {"sslmode": "REQUIRED", "connectTimeout": "3"}}, ConnectFailure.TLS),
    ],
    ids=["unknown-database", "refused-port", "unknown-host", "tls-not-offered"],
)
def test_mariadb_connect_failures_are_told_apart(my_database, changes, kind):
    if changes.get("port") == "free":
        changes = {**changes, "port": free_port()}
    with pytest.raises(ConnectError) as caught:
        connector_for("mysql").connect(my_params(**{"database": my_database["name"], **changes}))
    assert caught.value.kind is kind, caught.value.detail


def test_mariadb_wrong_password_is_a_login_failure_without_the_password(my_database):
    connector = connector_for("mysql")
    right = my_params(
        my_database["name"], username=my_database["user"], password=my_database["secret"]
    )
    connector.connect(right).close()
    wrong = my_params(my_database["name"], username=my_database["user"], password=AWKWARD_PASSWORD)
    with pytest.raises(ConnectError) as caught:
        connector.connect(wrong)
    assert caught.value.kind is ConnectFailure.LOGIN
    assert my_database["user"] in caught.value.message
    assert_hides(caught.value, AWKWARD_PASSWORD)


@pytest.mark.parametrize("mode", ["http", "garbage", "silent"])
def test_mariadb_refuses_listeners_that_are_not_mysql(my_database, mode):
    with listener(mode) as port:
        params = my_params(
            my_database["name"],
            port=port,
            password=AWKWARD_PASSWORD,
            options={"connectTimeout": "2"},
        )
        with pytest.raises(ConnectError) as caught:
            connector_for("mysql").connect(params)
    assert caught.value.kind is ConnectFailure.PROTOCOL, caught.value.detail
    assert_hides(caught.value, AWKWARD_PASSWORD)


def test_mariadb_lists_tables_and_views(my):
    connector, conn = my
    tables = {table.name: table for table in connector.list_tables(conn, None)}
    assert tables["zoo"].kind == "table" and isinstance(tables["zoo"].estimated_rows, int)
    assert tables["wide"].estimated_rows > 10000  # InnoDB's estimate, not a count
    assert tables["zoo_names"].kind == "view" and tables["zoo_names"].estimated_rows is None


def test_mariadb_describes_every_type_of_the_zoo(my):
    connector, conn = my
    columns = {column.name: column for column in connector.describe(conn, None, "zoo")}
    expected = {
        "ubig": "uint64",
        "utiny": "uint8",
        "amount": "decimal128(38, 10)",
        "dt6": "timestamp[us]",
        "zero_d": "date32[day]",
        "tm": "duration[us]",
        "size": "string",
        "tags": "string",
        "bits": "uint64",
        "flag": "bool",
        "ts": "timestamp[us, tz=UTC]",
        "bin": "binary",
    }
    for name, arrow in expected.items():
        assert columns[name].arrow_type == arrow, name
    assert columns["ubig"].source_type.endswith("unsigned")
    assert columns["size"].source_type == "enum('small','large')"
    assert columns["id"].primary_key and not columns["id"].nullable
    assert (columns["amount"].precision, columns["amount"].scale) == (38, 10)


@pytest.mark.parametrize("with_columns", [False, True], ids=["description", "described"])
def test_mariadb_round_trips_the_zoo_exactly(my, with_columns):
    connector, conn = my
    columns = connector.describe(conn, None, "zoo") if with_columns else None
    schema, _batches, table = read_all(
        connector, conn, "SELECT * FROM zoo ORDER BY id", columns=columns
    )
    assert schema.field("ubig").type == pa.uint64()
    rows = {row["id"]: row for row in table.to_pylist()}
    for row_id, expected in MY_EXPECTED.items():
        for name, value in expected.items():
            assert rows[row_id][name] == value, (row_id, name, rows[row_id][name])
            assert type(rows[row_id][name]) is type(value), (row_id, name)
    assert rows[2]["amount"] == Decimal("-0.0000000001")
    assert all(value is None for key, value in rows[2].items() if key not in ("id", "amount"))


def test_mariadb_binds_parameters_and_lists_procedures(my):
    connector, conn = my
    _schema, _batches, table = read_all(
        connector, conn, "SELECT id, vc FROM zoo WHERE vc = %(name)s", {"name": "O'Brien"}
    )
    assert table.to_pylist() == [{"id": 3, "vc": "O'Brien"}]
    procedures = {procedure.name: procedure for procedure in connector.procedures(conn)}
    parameters = procedures["zoo_after"].parameters
    assert [(p.name, p.source_type, p.direction) for p in parameters] == [
        ("low", "int(11)", "in"),
        ("total", "bigint(20)", "out"),
    ]


@pytest.mark.parametrize("batch_size", [1, 3, 7000])
def test_mariadb_batches_never_exceed_batch_size(my, batch_size):
    connector, conn = my
    _schema, batches, table = read_all(
        connector, conn, "SELECT id, label FROM wide ORDER BY id", None, batch_size
    )
    assert table.num_rows == 20000
    assert all(0 < batch.num_rows <= batch_size for batch in batches)
    assert table.column("id").to_pylist() == list(range(1, 20001))


def _mariadb_queries(database: str) -> list[str]:
    admin = mariadb_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT INFO FROM information_schema.PROCESSLIST "
                "WHERE DB = %s AND COMMAND IN ('Query', 'Execute') AND ID <> CONNECTION_ID()",
                (database,),
            )
            return [info for (info,) in cursor.fetchall() if info]
    finally:
        admin.close()


# Plain types: ConnectorX reads them (the query wrapped); a TIME column keeps PyMySQL.
MY_KILL_QUERIES = {
    "connectorx": "SELECT seq, md5(seq) AS label FROM seq_1_to_3000000",
    "pymysql": "SELECT seq, md5(seq) AS label, SEC_TO_TIME(seq % 86400) AS tm "
    "FROM seq_1_to_3000000",
}


@pytest.mark.parametrize("path", sorted(MY_KILL_QUERIES))
def test_mariadb_connection_killed_mid_read_is_transient(my, my_database, path):
    connector, conn = my
    stream = connector.execute_batches(conn, MY_KILL_QUERIES[path], None, 500)
    batches = iter(stream)
    next(batches)
    running = _mariadb_queries(my_database["name"])
    wrapped = [query for query in running if "SELECT q.`seq`" in query]
    assert len(wrapped) == (1 if path == "connectorx" else 0), running
    admin = mariadb_admin()
    with admin.cursor() as cursor:  # the session's connection and the one reading
        cursor.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s "
            "AND (ID = %s OR COMMAND IN ('Query', 'Execute')) AND ID <> CONNECTION_ID()",
            (my_database["name"], conn.thread_id()),
        )
        for (thread,) in cursor.fetchall():
            cursor.execute("KILL %s", (thread,))
    admin.close()
    with pytest.raises(SourceReadError) as caught:
        for _batch in batches:
            pass
    assert caught.value.retryable


def test_mariadb_stream_closed_early_ends_the_servers_query(my, my_database):
    connector, conn = my
    stream = connector.execute_batches(conn, MY_KILL_QUERIES["connectorx"], None, 10)
    batches = iter(stream)
    assert next(batches).num_rows == 10
    assert len(_mariadb_queries(my_database["name"])) == 1
    stream.close()
    deadline = time.monotonic() + 10
    while _mariadb_queries(my_database["name"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mariadb_queries(my_database["name"]) == []
    assert connector.list_tables(conn, None)  # the session itself goes on


MY_PLAIN = """
CREATE TABLE plain (
    id INT PRIMARY KEY, ubig BIGINT UNSIGNED, small SMALLINT, flag BOOLEAN,
    amount DECIMAL(18,2) NOT NULL, wide DECIMAL(38,10), f DOUBLE, f4 FLOAT,
    vc VARCHAR(20), txt TEXT, d DATE, dt6 DATETIME(6), ts TIMESTAMP(3) NULL, dt0 DATETIME
)
"""
MY_PLAIN_ROWS = [
    "(1, 18446744073709551615, -32768, TRUE, 12.34, 1234567890123456789012345678.0123456789,"
    " 0.1, 1.5, 'ä€😀', 'line1\\nline2', '2024-02-29', '2024-03-10 12:34:56.123456',"
    " '2024-03-10 12:34:56.789', '2024-03-10 12:34:56')",
    "(2, NULL, NULL, NULL, -0.01, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, 0, 0, FALSE, 0, -0.0000000001, -1e308, 0, '', '', '0000-00-00', '2024-00-10 00:00:00',"
    " '1970-01-01 00:00:01', '0000-00-00 00:00:00')",
    "(4, 1, 1, TRUE, 1, 1, 1, 1, 'x', 'x', '0001-01-01', '9999-12-31 23:59:59.999999',"
    " '2038-01-19 03:14:07.999', '9999-12-31 23:59:59')",
    "(5, 1, 1, TRUE, 1, 1, 1, 1, 'x', 'x', '0000-01-01', '0000-01-01 00:00:00', NULL,"
    " '0000-01-01 00:00:00')",
]


@pytest.fixture(scope="module")
def my_plain(my_database):
    admin = mariadb_admin()
    user, password = f"ff_cx_{uuid.uuid4().hex[:8]}", AWKWARD_PASSWORD
    with admin.cursor() as cursor:
        cursor.execute(f"USE `{my_database['name']}`")
        cursor.execute("SET SESSION sql_mode = ''")  # zero dates allowed
        cursor.execute("SET SESSION time_zone = '+00:00'")
        cursor.execute(MY_PLAIN)
        cursor.execute("INSERT INTO plain VALUES " + ", ".join(MY_PLAIN_ROWS))
        cursor.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
        cursor.execute(f"GRANT SELECT ON `{my_database['name']}`.* TO %s@'127.0.0.1'", (user,))
    yield {"user": user, "password": password}
    with admin.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'127.0.0.1'", (user,))
    admin.close()


def test_mariadb_plain_columns_read_through_connectorx_equal_pymysql(my_database, my_plain):
    connector = connector_for("mysql")
    params = my_params(
        my_database["name"], username=my_plain["user"], password=my_plain["password"]
    )
    with connector.connect(params) as conn:
        columns = connector.describe(conn, None, "plain")
        fast = read_all(connector, conn, "SELECT * FROM plain ORDER BY id", columns=columns)
        slow = read_all(
            connector,
            conn,
            "SELECT plain.*, SEC_TO_TIME(0) AS tm FROM plain ORDER BY id",
            columns=columns,
        )
    fast_schema, _batches, fast_table = fast
    slow_schema, _batches, slow_table = slow
    assert fast_schema == slow_schema.remove(slow_schema.get_field_index("tm"))
    assert fast_table.to_pylist() == slow_table.drop_columns(["tm"]).to_pylist()
    first, _null, zeros, extremes, year_zero = fast_table.to_pylist()
    assert first["ubig"] == 18446744073709551615
    assert first["wide"] == Decimal("1234567890123456789012345678.0123456789")
    assert first["vc"] == "ä€😀"
    assert first["dt6"] == dt.datetime(2024, 3, 10, 12, 34, 56, 123456)
    assert first["ts"] == dt.datetime(2024, 3, 10, 12, 34, 56, 789000, tzinfo=UTC)
    assert first["dt0"] == dt.datetime(2024, 3, 10, 12, 34, 56)
    assert (zeros["dt0"], extremes["dt0"], year_zero["dt0"]) == (
        None,
        dt.datetime(9999, 12, 31, 23, 59, 59),
        None,
    )
    assert (zeros["d"], zeros["dt6"]) == (None, None)  # zero dates read as NULL
    assert zeros["wide"] == Decimal("-0.0000000001")
    assert zeros["ts"] == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert (extremes["d"], extremes["dt6"]) == (
        dt.date(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    )
    assert extremes["ts"] == dt.datetime(2038, 1, 19, 3, 14, 7, 999000, tzinfo=UTC)
    assert (year_zero["d"], year_zero["dt6"]) == (None, None)  # year 0: a zero date too


def test_mariadb_connectorx_binds_parameters_and_reports_errors(my, my_database, my_plain):
    connector, conn = my
    _schema, _batches, table = read_all(
        connector, conn, "SELECT id, vc FROM plain WHERE vc = %(vc)s", {"vc": "ä€😀"}
    )
    assert table.to_pylist() == [{"id": 1, "vc": "ä€😀"}]
    _schema, _batches, table = read_all(
        connector, conn, "SELECT id FROM plain WHERE txt = %(t)s", {"t": "x' OR '1'='1"}
    )
    assert table.num_rows == 0
    with pytest.raises(SourceQueryError, match="MySQL refused the query") as caught:
        read_all(connector, conn, "SELECT id, 1 / 0 AS x FROM plain WHERE no_such_column = 1")
    assert_hides(caught.value, my_plain["password"])


# === Oracle and Snowflake (no server here) ====================================================


def test_oracle_arguments_pin_the_address_and_keep_the_password_intact():
    from flowforge_ingest.connectors.oracle import connect_arguments, description_source_type

    params = ConnectionParams(
        db_type="oracle",
        host="db.example.com",
        port=1522,
        database="ORCLPDB1",
        username="scott",
        password=AWKWARD_PASSWORD,
        options={"connectTimeout": "4"},
        resolved_addresses=("10.0.0.7",),
    )
    arguments = connect_arguments(params, "10.0.0.7")
    assert arguments["host"] == "10.0.0.7" and arguments["port"] == 1522
    assert arguments["service_name"] == "ORCLPDB1" and "sid" not in arguments
    assert arguments["password"] == AWKWARD_PASSWORD
    assert arguments["tcp_connect_timeout"] == 4.0 and arguments["protocol"] == "tcp"
    tls = connect_arguments(
        ConnectionParams(db_type="oracle", host="h", options={"encrypt": "true", "sid": "X"}),
        "10.0.0.7",
    )
    assert tls["protocol"] == "tcps" and tls["port"] == 2484 and tls["sid"] == "X"
    assert description_source_type("DB_TYPE_NUMBER", 0, -127) == "number"
    assert description_source_type("DB_TYPE_NUMBER", 10, 2) == "number(10,2)"
    assert description_source_type("DB_TYPE_NUMBER", 126, -127) == "float(126)"


def test_oracle_connect_failures_are_told_apart_without_a_server():
    connector = connector_for("oracle")
    base = {"db_type": "oracle", "database": "ORCL", "username": "u", "password": AWKWARD_PASSWORD}
    cases = [
        (
            {"host": "localhost", "port": free_port(), "resolved_addresses": ("127.0.0.1",)},
            "refused",
        ),
        ({"host": "no-such-host.invalid", "port": 1521}, "unreachable"),
    ]
    for changes, kind in cases:
        params = ConnectionParams(**base, **changes, options={"connectTimeout": "2"})
        with pytest.raises(ConnectError) as caught:
            connector.connect(params)
        assert caught.value.kind == kind, caught.value.detail
        assert_hides(caught.value, AWKWARD_PASSWORD)
    with listener("http") as port:
        params = ConnectionParams(
            **base,
            host="localhost",
            port=port,
            resolved_addresses=("127.0.0.1",),
            options={"connectTimeout": "2"},
        )
        with pytest.raises(ConnectError) as caught:
            connector.connect(params)
    assert caught.value.kind is ConnectFailure.PROTOCOL


def test_oracle_login_and_database_errors_are_classified():
    connector = connector_for("oracle")
    login = connector.classify_error(RuntimeError("ORA-01017: invalid username/password"))
    assert login.kind is ConnectFailure.LOGIN
    database = connector.classify_error(RuntimeError("DPY-6001: service not registered"))
    assert database.kind is ConnectFailure.DATABASE


def test_snowflake_arguments_name_the_account_and_pin_utc():
    from flowforge_ingest.connectors.snowflake import (
        connect_arguments,
        description_column,
        parse_signature,
    )

    params = ConnectionParams(
        db_type="snowflake",
        host="XY12345.eu-west-1.snowflakecomputing.com",
        database="ANALYTICS",
        username="loader",
        password=AWKWARD_PASSWORD,
        options={"warehouse": "WH", "role": "READER", "schema": "PUBLIC", "queryTimeout": "90"},
    )
    arguments = connect_arguments(params)
    assert arguments["account"] == "xy12345.eu-west-1"
    assert arguments["host"] == "XY12345.eu-west-1.snowflakecomputing.com"
    assert arguments["password"] == AWKWARD_PASSWORD
    assert arguments["session_parameters"] == {
        "TIMEZONE": "UTC",
        "QUERY_TAG": "FlowForge",
        "STATEMENT_TIMEOUT_IN_SECONDS": 90,
    }
    assert (arguments["warehouse"], arguments["role"], arguments["schema"]) == (
        "WH",
        "READER",
        "PUBLIC",
    )
    assert arguments["login_timeout"] == 10
    column = description_column(("AMOUNT", 0, None, None, 18, 2, True))
    assert column.source_type == "number(18,2)"
    assert str(column.field("snowflake").type) == "decimal128(18, 2)"
    assert [(p.name, p.source_type) for p in parse_signature("(A NUMBER, B VARCHAR)")] == [
        ("A", "NUMBER"),
        ("B", "VARCHAR"),
    ]


def test_snowflake_login_failure_is_classified_without_the_password():
    class FakeSnowflakeError(Exception):
        errno = 390100

    error = FakeSnowflakeError(f"Incorrect username or password was specified ({AWKWARD_PASSWORD})")
    failure = connector_for("snowflake").classify_error(error)
    assert failure.kind is ConnectFailure.LOGIN


# Live suites for servers that are not on this machine (skipped unless their URL is set).


def _smoke(db_type: str, variable: str, sql: str) -> None:
    params = params_from_env(variable, db_type)
    connector = connector_for(db_type)
    conn = connector.connect(params)
    try:
        assert connector.server_version(conn)
        connector.list_tables(conn, None)
        connector.procedures(conn)
        _schema, batches, table = read_all(connector, conn, sql, None, 2)
        assert table.num_rows == 3 and all(batch.num_rows <= 2 for batch in batches)
    finally:
        conn.close()
    wrong = ConnectionParams(**{**params.__dict__, "password": AWKWARD_PASSWORD})
    with pytest.raises(ConnectError) as caught:
        connector.connect(wrong)
    assert caught.value.kind is ConnectFailure.LOGIN
    assert_hides(caught.value, AWKWARD_PASSWORD)


def test_oracle_live_reads_and_classifies():
    _smoke(
        "oracle",
        "FLOWFORGE_TEST_ORACLE_URL",
        "SELECT level AS n, CAST(level / 3 AS NUMBER(10, 4)) AS third FROM dual "
        "CONNECT BY level <= 3",
    )


def test_snowflake_live_reads_and_classifies():
    _smoke(
        "snowflake",
        "FLOWFORGE_TEST_SNOWFLAKE_URL",
        "SELECT seq4() AS n, CAST(seq4() / 3 AS NUMBER(10, 4)) AS third "
        "FROM TABLE(GENERATOR(ROWCOUNT => 3))",
    )

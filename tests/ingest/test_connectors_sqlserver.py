"""The SQL Server connector: pymssql's arguments, and the real driver (FreeTDS) failing
against a closed port, listeners that are not SQL Server and an unknown host, each told
apart within the connect timeout and without the password. No SQL Server runs here: the
live suite (the PostgreSQL scenarios) runs only when FLOWFORGE_TEST_MSSQL_URL names one.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from flowforge_ingest.connectors.base import (
    ConnectError,
    ConnectFailure,
    ConnectionParams,
    SourceReadError,
)
from flowforge_ingest.connectors.registry import connector_for
from flowforge_ingest.connectors.sqlserver import (
    TDS_VERSION,
    connect_arguments,
    described_column,
    parse_system_type,
    type_text,
)
from tests.conftest import free_port
from tests.ingest.connector_fixtures import (
    AWKWARD_PASSWORD,
    assert_hides,
    is_babelfish,
    listener,
    params_from_env,
)

CONNECT_TIMEOUT = 2


def params(**changes) -> ConnectionParams:
    values = {
        "db_type": "sql-server",
        "host": "sql.example.com",
        "port": 1433,
        "database": "Sales",
        "username": "loader",
        "password": AWKWARD_PASSWORD,
        "options": {"connectTimeout": str(CONNECT_TIMEOUT)},
        "resolved_addresses": ("10.1.2.3",),
    }
    values.update(changes)
    return ConnectionParams(**values)


# --- arguments --------------------------------------------------------------------------------


def test_arguments_carry_every_setting_and_the_password_untouched():
    arguments = connect_arguments(
        params(
            options={"connectTimeout": "7", "queryTimeout": "120", "applicationIntent": "ReadOnly"}
        ),
        "10.1.2.3",
    )
    assert arguments["server"] == "10.1.2.3" and arguments["port"] == "1433"
    assert arguments["password"] == AWKWARD_PASSWORD  # no quoting: it is not a string to parse
    assert (arguments["user"], arguments["database"]) == ("loader", "Sales")
    assert arguments["tds_version"] == TDS_VERSION == "7.4"
    assert (arguments["login_timeout"], arguments["timeout"]) == (7, 120)
    assert arguments["read_only"] is True
    assert arguments["use_datetime2"] is True  # watermarks keep their microseconds
    assert arguments["encryption"] == "request"
    assert arguments["appname"] == "FlowForge"


def test_a_read_without_query_timeout_still_has_a_bound():
    arguments = connect_arguments(params(), "10.1.2.3")
    assert arguments["timeout"] > 0 and arguments["read_only"] is False


def test_named_instance_goes_through_the_browser_unless_a_port_is_given():
    named = connect_arguments(params(port=None, options={"instance": "SQLEXPRESS"}), "10.1.2.3")
    assert named["server"] == "10.1.2.3\\SQLEXPRESS"
    fixed = connect_arguments(params(port=14330, options={"instance": "SQLEXPRESS"}), "10.1.2.3")
    assert (fixed["server"], fixed["port"]) == ("10.1.2.3", "14330")


def test_encryption_is_required_only_with_trust_since_freetds_cannot_verify():
    trusted = connect_arguments(
        params(options={"encrypt": "true", "trustServerCertificate": "true"}), "10.1.2.3"
    )
    assert trusted["encryption"] == "require"
    for options in ({"encrypt": "true"}, {"encrypt": "strict", "trustServerCertificate": "true"}):
        with pytest.raises(ConnectError) as caught:
            connect_arguments(params(options=options), "10.1.2.3")
        assert caught.value.kind is ConnectFailure.TLS
        assert "TrustServerCertificate" in caught.value.message


def test_azure_ad_logins_are_refused_with_a_reason():
    with pytest.raises(ConnectError, match="azure-ad-password"):
        connect_arguments(params(authentication="azure-ad-password"), "10.1.2.3")


def test_source_types_are_spelled_as_sql_server_spells_them():
    assert type_text("nvarchar", 100, 0, 0) == "nvarchar(50)"
    assert type_text("varchar", -1, 0, 0) == "varchar(max)"
    assert type_text("decimal", 17, 38, 10) == "decimal(38,10)"
    assert type_text("datetime2", 8, 27, 7) == "datetime2(7)"
    assert parse_system_type("decimal(18,2)") == ("decimal", None, 18, 2)
    assert parse_system_type("nvarchar(50)") == ("nvarchar", 100, None, None)
    assert parse_system_type("varbinary(max)") == ("varbinary", -1, None, None)
    assert parse_system_type("datetime2(7)") == ("datetime2", None, None, 7)
    column = described_column("amount", "decimal", 17, 38, 10, False, True)
    assert (column.arrow_type, column.nullable, column.primary_key) == (
        "decimal128(38, 10)",
        False,
        True,
    )
    assert described_column("at", "datetime2", 8, 27, 7, True, False).arrow_type == "timestamp[ns]"
    assert described_column("name", "nvarchar", 100, 0, 0, True, False).max_length == 50


# --- the real driver against things that are not SQL Server ------------------------------------


def connect_failure(**changes) -> tuple[ConnectError, float]:
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught:
        connector_for("sql-server").connect(params(**changes))
    return caught.value, time.monotonic() - started


def test_closed_port_is_refused():
    error, _elapsed = connect_failure(
        host="localhost", port=free_port(), resolved_addresses=("127.0.0.1",)
    )
    assert error.kind is ConnectFailure.REFUSED, error.detail
    assert "refused" in error.message
    assert_hides(error, AWKWARD_PASSWORD)


@pytest.mark.parametrize("mode", ["http", "garbage", "silent"])
def test_listeners_that_do_not_speak_tds_are_protocol_failures(mode):
    with listener(mode) as port:
        error, elapsed = connect_failure(
            host="localhost", port=port, resolved_addresses=("127.0.0.1",)
        )
    assert error.kind is ConnectFailure.PROTOCOL, error.detail
    assert "does not speak the SQL Server protocol" in error.message
    assert elapsed < CONNECT_TIMEOUT + 5  # bounded by the login timeout, not FreeTDS's 60 s
    assert_hides(error, AWKWARD_PASSWORD)


def test_unknown_host_is_unreachable():
    error, elapsed = connect_failure(host="no-such-host.invalid", resolved_addresses=())
    assert error.kind is ConnectFailure.UNREACHABLE, error.detail
    assert "no-such-host.invalid" in error.message
    assert elapsed < CONNECT_TIMEOUT + 5
    assert_hides(error, AWKWARD_PASSWORD)


def test_server_answers_are_classified_by_their_numbers():
    import pymssql

    connector = connector_for("sql-server")
    login = pymssql.OperationalError((18456, b"Login failed for user 'loader'."))
    assert connector.classify_error(login).kind is ConnectFailure.LOGIN
    database = pymssql.OperationalError(
        (4060, b'Cannot open database "Nope" requested by the login. The login failed.')
    )
    assert connector.classify_error(database).kind is ConnectFailure.DATABASE
    timeout = pymssql.OperationalError((20003, b"TDS server connection timed out (10.1.2.3)"))
    assert connector.classify_error(timeout).kind is ConnectFailure.UNREACHABLE
    babelfish = pymssql.OperationalError(
        (911, b'database "nope" does not existDB-Lib error message 20018, severity 16:\n')
    )
    assert connector.classify_error(babelfish).kind is ConnectFailure.DATABASE


def test_a_server_message_pymssql_lost_is_classified_by_its_severity():
    """After one failed connect in a process, pymssql reports the next failure with the
    first one's number and no text (see sqlserver._lost_server_message); FreeTDS's 20018
    line keeps the new message's severity. Seen against Babelfish: a wrong password after
    an unknown database came back as (911, 'DB-Lib error message 20018, severity 14...')."""
    import pymssql

    connector = connector_for("sql-server")
    tail = b"General SQL Server error: Check messages from the SQL Server\n"
    dead = b"DB-Lib error message 20047, severity 9:\nDBPROCESS is dead or not enabled\n"
    lost_login = pymssql.OperationalError(
        (911, dead + b"DB-Lib error message 20018, severity 14:\n" + tail)
    )
    assert connector.classify_error(lost_login).kind is ConnectFailure.LOGIN
    lost_database = pymssql.OperationalError(
        (18456, b"DB-Lib error message 20018, severity 11:\n" + tail)
    )
    assert connector.classify_error(lost_database).kind is ConnectFailure.DATABASE
    lost_babelfish_database = pymssql.OperationalError(
        (18456, b"DB-Lib error message 20018, severity 16:\n" + tail)
    )
    assert connector.classify_error(lost_babelfish_database).kind is ConnectFailure.DATABASE
    stale_number = pymssql.OperationalError(
        (18456, b"DB-Lib error message 20002, severity 9:\nTDS server connection failed\n")
    )
    assert connector.classify_error(stale_number).kind is not ConnectFailure.LOGIN


# --- live (FLOWFORGE_TEST_MSSQL_URL) ------------------------------------------------------------

ZOO = """
CREATE TABLE {zoo} (
    id int NOT NULL PRIMARY KEY,
    amount decimal(38,10) NOT NULL,
    at datetime2(7),
    at_offset datetimeoffset(3),
    guid uniqueidentifier,
    name nvarchar(50),
    payload varbinary(16),
    flag bit,
    tiny tinyint,
    big bigint
);
INSERT INTO {zoo} VALUES
 (1, 1234567890123456789012345678.0123456789, '2024-03-10 12:34:56.1234567',
  '2024-03-10 12:34:56.123 +02:00', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', N'O''Brien ä€',
  0x00FF10, 1, 255, 9223372036854775807),
 (2, -0.01, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""


@pytest.fixture(scope="module")
def mssql():
    live = params_from_env("FLOWFORGE_TEST_MSSQL_URL", "sql-server")
    import pymssql

    suffix = uuid.uuid4().hex[:8]
    names = {
        "zoo": f"ff_zoo_{suffix}",
        "view": f"ff_zoo_view_{suffix}",
        "wide": f"ff_wide_{suffix}",
    }
    admin = pymssql.connect(
        server=live.host,
        port=str(live.port or 1433),
        user=live.username,
        password=live.password,
        database=live.database or "",
        autocommit=True,
        tds_version=TDS_VERSION,
        login_timeout=10,
    )
    with admin.cursor() as cursor:
        cursor.execute(ZOO.format(**names))
        cursor.execute(f"CREATE VIEW {names['view']} AS SELECT id, name FROM {names['zoo']}")
        cursor.execute(
            f"SELECT TOP 20000 ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS id INTO {names['wide']} "
            "FROM sys.all_objects a CROSS JOIN sys.all_objects b"
        )
    yield live, names, admin
    with admin.cursor() as cursor:
        cursor.execute(f"DROP VIEW IF EXISTS {names['view']}")
        cursor.execute(f"DROP TABLE IF EXISTS {names['zoo']}, {names['wide']}")
    admin.close()


def test_live_sql_server_lists_describes_and_round_trips(mssql):
    live, names, _admin = mssql
    connector = connector_for("sql-server")
    conn = connector.connect(live)
    try:
        assert connector.server_version(conn).startswith("SQL Server ")
        tables = {table.name: table for table in connector.list_tables(conn, None)}
        assert tables[names["zoo"]].kind == "table"
        # SQL Server counts a table's rows in sys.partitions as they change; Babelfish takes
        # PostgreSQL's statistics there: 0 (4.3) or -1 (4.2, shown as unknown) until the
        # table is first analyzed.
        expected_rows = {0, 2, None} if is_babelfish(conn) else {2}
        assert tables[names["zoo"]].estimated_rows in expected_rows
        assert tables[names["view"]].kind == "view"
        columns = {c.name: c for c in connector.describe(conn, None, names["zoo"])}
        assert columns["amount"].arrow_type == "decimal128(38, 10)"
        assert columns["at_offset"].arrow_type.endswith("tz=UTC]")
        assert columns["id"].primary_key and not columns["id"].nullable
        stream = connector.execute_batches(
            conn,
            f"SELECT * FROM {names['zoo']} WHERE name = %(name)s OR id = 2 ORDER BY id",
            {"name": "O'Brien ä€"},
            1,
        )
        batches = list(stream)
        assert [batch.num_rows for batch in batches] == [1, 1]
        first, second = pa.Table.from_batches(batches).to_pylist()
        assert first["amount"] == Decimal("1234567890123456789012345678.0123456789")
        assert first["at_offset"] == dt.datetime(2024, 3, 10, 10, 34, 56, 123000, tzinfo=dt.UTC)
        assert first["guid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        assert (first["name"], first["payload"], first["flag"], first["tiny"]) == (
            "O'Brien ä€",
            b"\x00\xff\x10",
            True,
            255,
        )
        assert second["amount"] == Decimal("-0.01") and second["at"] is None
    finally:
        conn.close()


# Generated on the fly, and more rows than the client's buffers hold when the session dies.
MANY_ROWS = (
    "SELECT TOP 2000000 ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS id "
    "FROM sys.all_objects a CROSS JOIN sys.all_objects b CROSS JOIN sys.all_objects c"
)


def test_live_sql_server_batches_and_dropped_connections(mssql):
    live, names, admin = mssql
    connector = connector_for("sql-server")
    conn = connector.connect(live)
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@SPID")
        spid = int(cursor.fetchone()[0])
    wide = list(connector.execute_batches(conn, f"SELECT id FROM {names['wide']}", None, 700))
    assert sum(batch.num_rows for batch in wide) == 20000
    assert all(0 < batch.num_rows <= 700 for batch in wide)
    stream = connector.execute_batches(conn, MANY_ROWS, None, 700)
    batches = iter(stream)
    assert next(batches).num_rows == 700
    with admin.cursor() as cursor:
        cursor.execute(f"KILL {spid}")
    with pytest.raises(SourceReadError):
        for batch in batches:
            assert batch.num_rows <= 700


def test_live_sql_server_failures_are_told_apart(mssql):
    live, _names, _admin = mssql
    connector = connector_for("sql-server")
    wrong = ConnectionParams(**{**live.__dict__, "password": AWKWARD_PASSWORD})
    with pytest.raises(ConnectError) as caught:
        connector.connect(wrong)
    assert caught.value.kind is ConnectFailure.LOGIN
    assert_hides(caught.value, AWKWARD_PASSWORD)
    missing = ConnectionParams(**{**live.__dict__, "database": "no_such_database_here"})
    with pytest.raises(ConnectError) as caught:
        connector.connect(missing)
    assert caught.value.kind is ConnectFailure.DATABASE


class _Rows:
    """A DB-API connection whose every query answers ``rows`` (no server needed)."""

    def __init__(self, rows):
        self.rows = rows

    def cursor(self):
        return self

    def execute(self, sql, params=None):
        self.sql = sql

    def fetchall(self):
        return self.rows

    def close(self):
        pass


def test_a_negative_row_estimate_is_unknown_not_minus_one():
    """Issue 11 defect 5: Babelfish 4.2 passes PostgreSQL's -1 ("never analyzed") through
    sys.partitions; the API must show ``estimatedRows: null``, never -1."""
    from flowforge_ingest.operations import _table

    rows = [
        ("dbo", "never_analyzed", "U ", -1),
        ("dbo", "empty", "U ", 0),
        ("dbo", "orders", "U ", 1234),
        ("dbo", "no_partitions", "U ", None),
        ("sales", "open_orders", "V ", None),
        ("sales", "view_with_rows", "V ", 5),
    ]
    tables = connector_for("sql-server").list_tables(_Rows(rows), None)
    estimates = {table.name: table.estimated_rows for table in tables}
    assert estimates == {
        "never_analyzed": None,
        "empty": 0,
        "orders": 1234,
        "no_partitions": None,
        "open_orders": None,
        "view_with_rows": None,
    }
    shown = {table.name: _table(table)["estimatedRows"] for table in tables}
    assert shown["never_analyzed"] is None and shown["orders"] == 1234
    assert [table.kind for table in tables] == ["table"] * 4 + ["view"] * 2

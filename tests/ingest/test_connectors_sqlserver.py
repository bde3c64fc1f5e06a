"""The SQL Server connector: the driver's connection string, and the real driver
(mssql-python with its bundled ODBC driver) failing against a closed port, listeners that
are not SQL Server and an unknown host, each told apart within the connect timeout and
without the password. The live suite runs when FLOWFORGE_TEST_MSSQL_URL names a server
(Babelfish 4.2 here; docs/connectors.md).
"""

from __future__ import annotations

import contextlib
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
    connection_string,
    described_column,
    encrypt_mode,
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


def keywords(text: str) -> dict[str, str]:
    """An ODBC connection string's keywords (values unbraced), for assertions."""
    from flowforge_rules.connstrings import parse_connection_string

    parsed = parse_connection_string(text, "sql-server")
    found = {"Server": parsed.host, "UID": parsed.username, "PWD": parsed.password}
    return {**found, **{k.lower(): v for k, v in parsed.options.items()}}


# --- the connection string ----------------------------------------------------------------------


def test_the_connection_is_pinned_to_the_checked_address_and_verifies_the_host_name():
    text = connection_string(params(options={"applicationIntent": "ReadOnly"}), "10.1.2.3")
    assert text.startswith("Server=tcp:10.1.2.3,1433;Database=Sales;")
    assert "Encrypt=yes;" in text  # mandatory by default
    assert "HostNameInCertificate=sql.example.com;" in text  # the name the user gave
    assert "TrustServerCertificate" not in text
    assert "ApplicationIntent=ReadOnly" in text
    assert "ConnectRetryCount=0" in text


def test_the_password_is_escaped_for_odbc_and_arrives_whole():
    text = connection_string(params(password="p;w}d={x"), "10.1.2.3")
    assert "PWD={p;w}}d={x};" in text
    assert keywords(text)["PWD"] == "p;w}d={x"


def test_encryption_modes():
    assert encrypt_mode({}) == "mandatory"
    assert [encrypt_mode({"encrypt": v}) for v in (True, "yes", "Mandatory")] == ["mandatory"] * 3
    assert [encrypt_mode({"encrypt": v}) for v in (False, "no", "optional")] == ["optional"] * 3
    assert encrypt_mode({"encrypt": "strict"}) == "strict"
    with pytest.raises(ConnectError, match="encrypt must be one of"):
        encrypt_mode({"encrypt": "sometimes"})
    trusted = connection_string(
        params(options={"encrypt": True, "trustServerCertificate": True}), "10.1.2.3"
    )
    assert "TrustServerCertificate=yes" in trusted and "HostNameInCertificate" not in trusted
    strict = connection_string(
        params(options={"encrypt": "strict", "trustServerCertificate": True}), "10.1.2.3"
    )
    # strict always verifies: TrustServerCertificate does not weaken it
    assert "Encrypt=strict;" in strict and "TrustServerCertificate" not in strict
    named = connection_string(
        params(options={"encrypt": "mandatory", "hostNameInCertificate": "db.corp"}), "10.1.2.3"
    )
    assert "HostNameInCertificate=db.corp;" in named
    clear = connection_string(params(options={"encrypt": "optional"}), "10.1.2.3")
    assert "Encrypt=no;" in clear and "HostNameInCertificate" not in clear


def test_what_a_verified_connect_trusts_is_part_of_its_pool_key(monkeypatch, tmp_path):
    from flowforge_ingest.connectors.sqlserver import trust_tag

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    verified = params(options={"encrypt": "mandatory"})
    plain = trust_tag(verified, None)
    assert plain and trust_tag(verified, "-----BEGIN CERTIFICATE-----A") not in (plain, None)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "bundle.pem"))
    assert trust_tag(verified, None) != plain
    text = connection_string(verified, "10.1.2.3", trust_tag(verified, None))
    assert f"ServerSPN=flowforge-trust-{trust_tag(verified, None)}" in text
    # nothing is checked, so nothing to tell apart; Kerberos needs the real SPN
    assert trust_tag(params(options={"encrypt": "optional"}), None) is None
    trusting = params(options={"encrypt": "mandatory", "trustServerCertificate": True})
    assert trust_tag(trusting, None) is None


def test_named_instance_goes_through_the_browser_unless_a_port_is_given():
    named = connection_string(params(port=None, options={"instance": "SQLEXPRESS"}), "10.1.2.3")
    assert named.startswith("Server=10.1.2.3\\SQLEXPRESS;")
    fixed = connection_string(params(port=14330, options={"instance": "SQLEXPRESS"}), "10.1.2.3")
    assert fixed.startswith("Server=tcp:10.1.2.3,14330;")


def test_entra_methods_send_no_user_or_password_in_the_string():
    text = connection_string(
        params(
            authentication="azure-ad-service-principal",
            username="client-id",
            password="client-secret-value",
            options={"tenantId": "t"},
        ),
        "10.1.2.3",
    )
    assert "client-secret-value" not in text and "UID" not in text and "PWD" not in text


def test_windows_authentication_is_kerberos_and_refuses_a_password(monkeypatch, tmp_path):
    with pytest.raises(ConnectError, match="Kerberos"):
        connection_string(params(authentication="windows"), "10.1.2.3")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    with pytest.raises(ConnectError, match="no(ne)? .*ticket|none was found"):
        connection_string(params(authentication="windows", password=None), "10.1.2.3")
    (tmp_path / "cache").write_bytes(b"\x05\x04")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'cache'}")
    text = connection_string(params(authentication="windows", password=None), "10.1.2.3")
    assert "Trusted_Connection=yes" in text and "PWD" not in text


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


# The driver's own words, as mssql-python 1.16 (ODBC Driver 18.6) said them to Babelfish 4.2.
DRIVER = "Driver Error: Client unable to establish connection; DDBC Error: [Microsoft]"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "Driver Error: Invalid authorization specification; DDBC Error: [Microsoft][SQL "
            'Server]Login failed for user "loader"',
            ConnectFailure.LOGIN,
        ),
        (
            "Driver Error: Server rejected the connection; DDBC Error: [Microsoft][SQL Server]"
            'database "nope" does not exist',
            ConnectFailure.DATABASE,
        ),
        (
            '[Microsoft][SQL Server]Cannot open database "Nope" requested by the login.',
            ConnectFailure.DATABASE,
        ),
        (DRIVER + "Encryption not supported on SQL Server.", ConnectFailure.TLS_UNSUPPORTED),
        (
            DRIVER + "SSL Provider: [error:0A000086:SSL routines::certificate verify failed:"
            "self-signed certificate]",
            ConnectFailure.TLS_UNTRUSTED,
        ),
        (
            DRIVER + "SSL Provider: [error:0A000086:SSL routines::certificate verify failed:"
            "unable to get local issuer certificate]",
            ConnectFailure.TLS_UNTRUSTED,
        ),
        (
            DRIVER + "SSL Provider: [error:0A000086:SSL routines::certificate verify failed:"
            "subject name does not match host name]",
            ConnectFailure.TLS_HOSTNAME,
        ),
        (DRIVER + "TCP Provider: Timeout error [258]. ", ConnectFailure.UNREACHABLE),
        (
            DRIVER + "Client unable to establish connection because an error was encountered "
            "during handshakes before login.",
            ConnectFailure.PROTOCOL,
        ),
    ],
)
def test_driver_answers_are_classified(text, kind):
    assert connector_for("sql-server").classify_error(RuntimeError(text)).kind is kind


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
    suffix = uuid.uuid4().hex[:8]
    names = {
        "zoo": f"ff_zoo_{suffix}",
        "view": f"ff_zoo_view_{suffix}",
        "wide": f"ff_wide_{suffix}",
    }
    admin = connector_for("sql-server").connect(live)
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


# Generated on the fly, and far more rows (80 MB and more) than the socket and driver buffers
# can hold when the session dies, even when the reader is slow.
MANY_ROWS = (
    "SELECT TOP 10000000 ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS id "
    "FROM sys.all_objects a CROSS JOIN sys.all_objects b CROSS JOIN sys.all_objects c"
)


def test_live_sql_server_batches_and_dropped_connections(mssql):
    live, names, admin = mssql
    connector = connector_for("sql-server")
    conn = connector.connect(live)
    wide = list(connector.execute_batches(conn, f"SELECT id FROM {names['wide']}", None, 700))
    assert sum(batch.num_rows for batch in wide) == 20000
    assert all(0 < batch.num_rows <= 700 for batch in wide)
    conn.close()
    # A killed session must never read as a complete result. The driver's Arrow fetch
    # sometimes ends such a read after a short batch without an error (2 of 5 tries on
    # Babelfish 4.2): ten tries, each a fresh session.
    for _attempt in range(10):
        conn = connector.connect(live)
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@SPID")
            spid = int(cursor.fetchone()[0])
        stream = connector.execute_batches(conn, MANY_ROWS, None, 700)
        batches = iter(stream)
        assert next(batches).num_rows == 700
        with admin.cursor() as cursor:
            cursor.execute(f"KILL {spid}")
        with pytest.raises(SourceReadError):
            for batch in batches:
                assert batch.num_rows <= 700
        with contextlib.suppress(Exception):
            conn.close()


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


# --- TLS, live: the URL names the CA (caFile) that signed the server's certificate ----------------


def _tls_params(live: ConnectionParams, **options) -> ConnectionParams:
    if not live.options.get("caFile"):
        pytest.skip("FLOWFORGE_TEST_MSSQL_URL names no caFile: the TLS checks need the server's CA")
    merged = {**live.options, "encrypt": "mandatory", "connectTimeout": "5", **options}
    return ConnectionParams(
        **{**live.__dict__, "options": {k: v for k, v in merged.items() if v is not None}}
    )


def _encrypted(conn) -> str:
    cursor = conn.cursor()
    cursor.execute("SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID")
    return str(cursor.fetchone()[0]).upper()


def test_live_tls_is_verified_against_the_connections_ca_file(mssql, monkeypatch):
    live, _names, _admin = mssql
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    connector = connector_for("sql-server")
    conn = connector.connect(_tls_params(live))
    try:
        assert _encrypted(conn) == "TRUE"
    finally:
        conn.close()
    # the same trust from SSL_CERT_FILE, as any OpenSSL client takes it
    monkeypatch.setenv("SSL_CERT_FILE", live.options["caFile"])
    conn = connector.connect(_tls_params(live, caFile=None))
    conn.close()


def test_live_tls_refuses_an_untrusted_certificate_unless_told_to_trust_it(mssql, monkeypatch):
    live, _names, _admin = mssql
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    connector = connector_for("sql-server")
    with pytest.raises(ConnectError) as caught:
        connector.connect(_tls_params(live, caFile=None))
    assert caught.value.kind is ConnectFailure.TLS_UNTRUSTED, caught.value.detail
    assert "caFile" in caught.value.message
    assert_hides(caught.value, live.password)
    conn = connector.connect(_tls_params(live, caFile=None, trustServerCertificate="true"))
    try:
        assert _encrypted(conn) == "TRUE"
    finally:
        conn.close()


def test_live_tls_refuses_a_certificate_for_another_host_name(mssql):
    live, _names, _admin = mssql
    with pytest.raises(ConnectError) as caught:
        connector_for("sql-server").connect(
            _tls_params(live, hostNameInCertificate="not-this-server.invalid")
        )
    assert caught.value.kind is ConnectFailure.TLS_HOSTNAME, caught.value.detail
    assert "another host name" in caught.value.message


def test_live_strict_encryption_needs_tds_8(mssql):
    live, _names, admin = mssql
    connector = connector_for("sql-server")
    started = time.monotonic()
    if not is_babelfish(admin):  # SQL Server 2022 speaks TDS 8.0
        connector.connect(_tls_params(live, encrypt="strict")).close()
        return
    with pytest.raises(ConnectError) as caught:
        connector.connect(_tls_params(live, encrypt="strict"))
    assert caught.value.kind is ConnectFailure.TLS_UNSUPPORTED, caught.value.detail
    assert "TDS 8.0" in caught.value.message
    assert time.monotonic() - started < 5 + 3  # the connect timeout, not the driver's 60 s


def test_live_a_server_without_tls_is_told_apart(mssql):
    """Only where the server offers no TLS (FLOWFORGE_TEST_MSSQL_NO_TLS=1, a server started
    with ssl = off): a required encryption is refused as unsupported."""
    import os

    live, _names, _admin = mssql
    if os.environ.get("FLOWFORGE_TEST_MSSQL_NO_TLS") != "1":
        pytest.skip("the server offers TLS (set FLOWFORGE_TEST_MSSQL_NO_TLS=1 against one without)")
    with pytest.raises(ConnectError) as caught:
        connector_for("sql-server").connect(_tls_params(live))
    assert caught.value.kind is ConnectFailure.TLS_UNSUPPORTED, caught.value.detail


def test_live_a_table_read_keeps_the_100_ns_digit_of_datetime2_7(mssql):
    """A table read lists its columns and reads datetime2(7) as ISO text: the driver's Arrow
    timestamps stop at microseconds. Babelfish stores microseconds (rounded), SQL Server
    100 ns; the column is declared datetime2(7) either way (Babelfish's catalog says 6, so the
    suite describes it as SQL Server would)."""
    from dataclasses import replace

    from flowforge_ingest.connectors.sql import plan_read

    live, names, admin = mssql
    connector = connector_for("sql-server")
    conn = connector.connect(live)
    try:
        columns = [
            replace(c, source_type="datetime2(7)", scale=7, arrow_type="timestamp[ns]")
            if c.name == "at"
            else c
            for c in connector.describe(conn, None, names["zoo"])
        ]
        plan = plan_read("sql-server", schema=None, table=names["zoo"])
        table = pa.Table.from_batches(
            list(connector.execute_batches(conn, plan.sql, plan.params, 10, columns))
        )
    finally:
        conn.close()
    assert table.schema.field("at").type == pa.timestamp("ns")
    at = table.sort_by("id").column("at").cast(pa.int64()).to_pylist()
    expected_ns = 123457000 if is_babelfish(admin) else 123456700
    assert (
        at[0]
        == int(dt.datetime(2024, 3, 10, 12, 34, 56, tzinfo=dt.UTC).timestamp()) * 10**9
        + expected_ns
    )
    assert at[1] is None


def test_live_column_names_come_from_the_result_set(mssql):
    """Babelfish lower-cases names in sys.columns and sp_describe_first_result_set (`Order`
    became `order` in bronze); the result set and INFORMATION_SCHEMA keep them as created."""
    from flowforge_ingest.connectors.sql import plan_read

    live, names, admin = mssql
    table = f"ff_case_{uuid.uuid4().hex[:8]}"
    cursor = admin.cursor()
    cursor.execute(
        f"CREATE TABLE {table} ([Order] int, [CustomerName] nvarchar(20), [Loan Book] int)"
    )
    cursor.execute(f"INSERT INTO {table} VALUES (1, N'Ann', 7)")
    connector = connector_for("sql-server")
    conn = connector.connect(live)
    try:
        columns = connector.describe(conn, None, table)
        # the browser's schema, the delta column and the key are matched to bronze by name
        assert [column.name for column in columns] == ["Order", "CustomerName", "Loan Book"]
        table_read = plan_read("sql-server", schema=None, table=table)
        query_read = plan_read("sql-server", schema=None, query=f"SELECT * FROM {table}")
        for plan, known in ((table_read, columns), (query_read, None)):
            batches = list(connector.execute_batches(conn, plan.sql, plan.params, 10, known))
            assert batches[0].schema.names == ["Order", "CustomerName", "Loan Book"]
            assert batches[0].to_pylist() == [{"Order": 1, "CustomerName": "Ann", "Loan Book": 7}]
    finally:
        conn.close()
        cursor.execute(f"DROP TABLE {table}")


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


def test_a_pooled_session_never_serves_a_connect_that_trusts_otherwise(mssql, monkeypatch):
    """The driver's pool keys sessions by the connection string: a session verified under
    one trust (SSL_CERT_FILE, a CA file) must not serve a connect that would refuse the
    server's certificate."""
    live, _names, _admin = mssql
    connector = connector_for("sql-server")
    monkeypatch.setenv("SSL_CERT_FILE", _tls_params(live).options["caFile"])
    connector.connect(_tls_params(live, caFile=None)).close()  # pooled, verified
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(ConnectError) as caught:
        connector.connect(_tls_params(live, caFile=None))
    assert caught.value.kind is ConnectFailure.TLS_UNTRUSTED, caught.value.detail

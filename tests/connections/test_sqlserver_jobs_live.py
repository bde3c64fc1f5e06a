"""SQL Server end to end through the product, against the server FLOWFORGE_TEST_MSSQL_URL
names (SQL Server itself, or Babelfish for PostgreSQL: a TDS server that keeps
microseconds, not 100 ns): a connection saved from a pasted ADO.NET string, the checks and
browsing of the operations path, a table job whose every type lands in bronze, an
incremental job on a datetime2 column and a stored-procedure job with typed parameters.

Skipped when the variable is unset: no SQL Server runs on the CI machines (see
docs/connectors.md, "Running the live suites").
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tests.conftest import ADMIN_TOKEN
from tests.connections.conftest import wait
from tests.ingest.connector_fixtures import drop_sql_server_database, params_from_env

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
UTC = dt.UTC
AUDIT = {"_ingested_at", "_execution_id", "_job_id", "_source", "_source_row"}

ZOO = """
CREATE TABLE dbo.zoo (
    id int NOT NULL PRIMARY KEY,
    ti tinyint, si smallint, bi bigint, b bit,
    d18 decimal(18,2), d38 decimal(38,10), m money, f float, r real,
    dd date, dtm datetime, dt2 datetime2(6), dto datetimeoffset(3),
    ch char(5), vc varchar(20), nv nvarchar(50), nvm nvarchar(max),
    g uniqueidentifier, vb varbinary(16)
);
INSERT INTO dbo.zoo VALUES
 (1, 255, -32768, 9223372036854775807, 1,
  12.34, 1234567890123456789012345678.0123456789, 922337203685477.5807, 0.1, 1.5,
  '2024-02-29', '2024-03-10 12:34:56.997', '2024-03-10 12:34:56.123456',
  '2024-03-10 12:34:56.123 +02:00',
  'ab', 'O''Brien', N'ä€😀', N'line1' + NCHAR(10) + N'line2, "quoted"',
  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 0x00FF10),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL);
"""

ZOO_TYPES = {
    "ti": pa.int16(),  # tinyint is uint8, stored widened (Delta has no unsigned types)
    "si": pa.int16(),
    "bi": pa.int64(),
    "b": pa.bool_(),
    "d18": pa.decimal128(18, 2),
    "d38": pa.decimal128(38, 10),
    "m": pa.decimal128(19, 4),
    "f": pa.float64(),
    "r": pa.float32(),
    "dd": pa.date32(),
    "dtm": pa.timestamp("us"),
    "dt2": pa.timestamp("us"),
    "dto": pa.timestamp("us", tz="UTC"),
    "ch": pa.string(),
    "vc": pa.string(),
    "nv": pa.string(),
    "nvm": pa.string(),
    "g": pa.string(),
    "vb": pa.binary(),
}

ZOO_FIRST = {
    "ti": 255,
    "si": -32768,
    "bi": 9223372036854775807,
    "b": True,
    "d18": Decimal("12.34"),
    "d38": Decimal("1234567890123456789012345678.0123456789"),
    "m": Decimal("922337203685477.5807"),
    "f": 0.1,
    "r": 1.5,
    "dd": dt.date(2024, 2, 29),
    "dtm": dt.datetime(2024, 3, 10, 12, 34, 56, 997000),
    "dt2": dt.datetime(2024, 3, 10, 12, 34, 56, 123456),
    "dto": dt.datetime(2024, 3, 10, 10, 34, 56, 123000, tzinfo=UTC),
    "ch": "ab   ",  # char(5) is blank-padded by the server
    "vc": "O'Brien",
    "nv": "ä€😀",
    "nvm": 'line1\nline2, "quoted"',
    "g": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "vb": b"\x00\xff\x10",
}

CUSTOMERS = """
CREATE TABLE dbo.customers (
    customer_id int NOT NULL PRIMARY KEY,
    name nvarchar(50) NOT NULL,
    balance decimal(18,2) NOT NULL,
    modified_date datetime2(6) NOT NULL
)
"""
PROCEDURE = """
CREATE PROCEDURE dbo.customers_since @since datetime2(6), @min_balance decimal(18,2) AS
BEGIN
    SELECT customer_id, name, balance FROM dbo.customers
    WHERE modified_date > @since AND balance >= @min_balance
    ORDER BY customer_id
END
"""
BASE = dt.datetime(2024, 1, 1, 12, 0, 0, 123456)


def _connect(live, database: str):
    """A connection for setting up the source, through the connector (mssql-python)."""
    from dataclasses import replace

    from flowforge_ingest.connectors.registry import connector_for

    return connector_for("sql-server").connect(replace(live, database=database))


@pytest.fixture(scope="module")
def mssql_source():
    live = params_from_env("FLOWFORGE_TEST_MSSQL_URL", "sql-server")
    name = f"ff_src_{uuid.uuid4().hex[:10]}"
    admin = _connect(live, live.database or "master")
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    source = _connect(live, name)
    with source.cursor() as cursor:
        cursor.execute(ZOO)
        cursor.execute(CUSTOMERS)
        cursor.execute(PROCEDURE)
    yield {"live": live, "database": name, "source": source}
    source.close()
    drop_sql_server_database(admin, name)
    admin.close()


def ado_string(live, database: str, password: str | None = None) -> str:
    secret = (password if password is not None else live.password).replace('"', '""')
    return (
        f"Server=tcp:{live.host},{live.port or 1433};Initial Catalog={database};"
        f'User ID={live.username};Password="{secret}";Encrypt=False'
    )


def save(api, live, database: str, password: str | None = None) -> str:
    body = {
        "name": f"mssql-{uuid.uuid4().hex[:6]}",
        "type": "sql-server",
        "connectionString": ado_string(live, database, password),
    }
    response = api.post("/api/connections", json=body, headers=H)
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["host"] == live.host and saved["database"] == database
    assert live.password not in response.text
    return saved["id"]


def job_workflow(api, database_config: dict, bronze_table: str) -> tuple[str, str]:
    workflow = api.post(
        "/api/workflows", json={"name": f"mssql-{uuid.uuid4().hex[:6]}"}, headers=H
    ).json()
    job = {
        "name": f"Ingest {bronze_table}",
        "type": "database",
        "sourceConfig": {"type": "sql-server", "databaseConfig": database_config},
        "destinationConfig": {"bronzeConfig": {"tableName": bronze_table}},
    }
    created = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H)
    assert created.status_code == 201, created.text
    return workflow["id"], created.json()["id"]


def run(api, workflow_id: str) -> dict:
    started = api.post(f"/api/workflows/{workflow_id}/run", headers=H)
    assert started.status_code in (200, 201, 202), started.text
    return wait(api, started.json()["executionId"])


def bronze(api, table: str) -> pa.Table:
    return DeltaTable(f"{api.settings.lake_root}/bronze/{table}").to_pyarrow_table()


def test_sql_server_checks_and_browsing_through_the_worker_path(api, mssql_source):
    live, database = mssql_source["live"], mssql_source["database"]
    saved = save(api, live, database)
    ok = api.post("/api/test-connection/database", json={"connectionId": saved}, headers=H)
    assert ok.status_code == 200, ok.text
    answer = ok.json()
    assert answer["success"] is True, answer
    assert answer["serverVersion"].startswith("SQL Server ")
    assert {"zoo", "customers"} <= {table["name"] for table in answer["tables"]}

    wrong = save(api, live, database, password="not-the-password")
    failed = api.post(
        "/api/test-connection/database", json={"connectionId": wrong}, headers=H
    ).json()
    assert failed["success"] is False and failed["kind"] == "login", failed
    assert "not-the-password" not in str(failed)
    missing = save(api, live, "no_such_database_here")
    failed = api.post(
        "/api/test-connection/database", json={"connectionId": missing}, headers=H
    ).json()
    assert failed["success"] is False and failed["kind"] == "database", failed

    params = {"connectionId": saved, "schema": "dbo"}
    tables = api.get("/api/database/tables", params=params, headers=H).json()["data"]
    assert {"zoo": "table", "customers": "table"}.items() <= {
        table["name"]: table["kind"] for table in tables
    }.items()
    schema = api.get("/api/database/schema", params={**params, "table": "zoo"}, headers=H).json()
    columns = {column["name"]: column for column in schema["columns"]}
    assert columns["id"]["primaryKey"] is True and columns["id"]["nullable"] is False
    assert columns["d38"]["arrowType"] == "decimal128(38, 10)"
    assert columns["dto"]["arrowType"] == "timestamp[us, tz=UTC]"
    assert columns["nv"]["maxLength"] == 50
    preview = api.get(
        "/api/database/preview", params={**params, "table": "zoo", "limit": 1}, headers=H
    )
    assert preview.status_code == 200, preview.text
    assert len(preview.json()["rows"]) == 1
    procedures = api.get(
        "/api/database/procedures", params={"connectionId": saved}, headers=H
    ).json()["data"]
    found = {procedure["name"]: procedure for procedure in procedures}
    assert [
        (parameter["name"], parameter["sourceType"])
        for parameter in found["customers_since"]["parameters"]
    ] == [("@since", "datetime2(6)"), ("@min_balance", "decimal(18,2)")]
    assert live.password not in api.get("/api/audit", headers=H).text


def test_sql_server_type_zoo_lands_in_bronze_exactly(api, mssql_source):
    saved = save(api, mssql_source["live"], mssql_source["database"])
    workflow_id, _job = job_workflow(
        api, {"connectionId": saved, "schema": "dbo", "tableName": "zoo"}, "bronze_mssql_zoo"
    )
    done = run(api, workflow_id)
    assert done["status"] == "succeeded", done
    table = bronze(api, "bronze_mssql_zoo")
    assert [name for name in table.column_names if name not in AUDIT] == ["id", *ZOO_TYPES]
    for name, data_type in ZOO_TYPES.items():
        assert table.schema.field(name).type == data_type, (name, table.schema.field(name))
    rows = {row["id"]: row for row in table.to_pylist()}
    for name, want in ZOO_FIRST.items():
        got = rows[1][name]
        if name == "r":
            want = pa.array([want], pa.float32())[0].as_py()
        assert type(got) is type(want) and got == want, (name, got, want)
    assert all(rows[2][name] is None for name in ZOO_TYPES)


def test_sql_server_incremental_job_reads_each_change_once(api, mssql_source):
    source = mssql_source["source"]
    _fill_customers(source, "c")
    saved = save(api, mssql_source["live"], mssql_source["database"])
    config = {
        "connectionId": saved,
        "schema": "dbo",
        "tableName": "customers",
        "isIncremental": True,
        "deltaColumn": "modified_date",
        "batchSize": 2,
    }
    workflow_id, job_id = job_workflow(api, config, "bronze_mssql_customers")
    first = run(api, workflow_id)
    assert first["status"] == "succeeded", first
    assert first["jobs"][0]["rowsWritten"] == 5
    mark = api.get(f"/api/workflows/{workflow_id}/jobs/{job_id}/watermark", headers=H).json()
    assert mark["watermark"]["value"].startswith("2024-01-01T12:05:00.123456")

    with source.cursor() as cursor:
        later = _text(BASE + dt.timedelta(minutes=10))
        cursor.execute(
            "UPDATE dbo.customers SET balance = 999.99, modified_date = ? WHERE customer_id = 2",
            (later,),
        )
        cursor.execute("INSERT INTO dbo.customers VALUES (6, 'c6', 6.00, ?)", (later,))
        # one microsecond after the watermark: a bound cut to milliseconds would skip or
        # re-read it
        cursor.execute(
            "INSERT INTO dbo.customers VALUES (7, 'c7', 7.00, ?)",
            (_text(BASE + dt.timedelta(minutes=5, microseconds=1)),),
        )
    second = run(api, workflow_id)
    assert second["status"] == "succeeded", second
    assert second["jobs"][0]["rowsWritten"] == 3
    table = bronze(api, "bronze_mssql_customers")
    assert table.num_rows == 8
    balances = sorted(row["balance"] for row in table.to_pylist() if row["customer_id"] == 2)
    assert balances == [Decimal("200.10"), Decimal("999.99")]
    third = run(api, workflow_id)
    assert third["jobs"][0]["rowsWritten"] == 0


def test_sql_server_stored_procedure_job_binds_typed_parameters(api, mssql_source):
    _fill_customers(mssql_source["source"], "O'c")
    saved = save(api, mssql_source["live"], mssql_source["database"])
    config = {
        "connectionId": saved,
        "schema": "dbo",
        "storedProcedure": "customers_since",
        "parameters": {"since": "2024-01-01T12:02:00.123456", "min_balance": 300},
    }
    workflow_id, _job = job_workflow(api, config, "bronze_mssql_since")
    done = run(api, workflow_id)
    assert done["status"] == "succeeded", done
    rows = sorted(
        (row["customer_id"], row["name"], row["balance"])
        for row in bronze(api, "bronze_mssql_since").to_pylist()
    )
    # SQL Server describes a procedure's first result set before running it; Babelfish's
    # sp_describe_first_result_set returns nothing for an EXEC, so the types are the ones the
    # driver's Arrow result carries: the decimal keeps its precision and scale on both.
    balance = Decimal
    assert rows == [
        (3, "O'c3", balance("300.10")),
        (4, "O'c4", balance("400.10")),
        (5, "O'c5", balance("500.10")),
    ]


def _fill_customers(source, prefix: str) -> None:
    """Customers 1-5: name prefix + id, balance id00.10, modified id minutes after BASE."""
    with source.cursor() as cursor:
        cursor.execute("DELETE FROM dbo.customers")
        for i in range(1, 6):
            cursor.execute(
                "INSERT INTO dbo.customers VALUES (?, ?, ?, ?)",
                (i, f"{prefix}{i}", Decimal(f"{i}00.10"), _text(BASE + dt.timedelta(minutes=i))),
            )


def _text(value: dt.datetime) -> str:
    """A datetime2 literal with all six digits (a driver's datetime could lose digits)."""
    return value.isoformat(timespec="microseconds")


def test_sql_server_query_job_reads_and_writing_queries_are_refused(api, mssql_source):
    _fill_customers(mssql_source["source"], "q")
    saved = save(api, mssql_source["live"], mssql_source["database"])
    query = (
        # CAST: Babelfish describes a computed decimal as numeric(38,38) (docs/connectors.md)
        "SELECT TOP (10) c.customer_id, CAST(c.balance * 2 AS decimal(19,2)) AS doubled "
        "FROM dbo.customers AS c "
        "WHERE c.balance > 250 ORDER BY c.customer_id"
    )
    workflow_id, _job = job_workflow(api, {"connectionId": saved, "query": query}, "bronze_q")
    done = run(api, workflow_id)
    assert done["status"] == "succeeded", (done["error"], done["jobs"][0]["error"])
    rows = sorted(
        (row["customer_id"], row["doubled"]) for row in bronze(api, "bronze_q").to_pylist()
    )
    assert [customer for customer, _doubled in rows] == [3, 4, 5]
    assert rows[0][1] == Decimal("600.20")

    workflow = api.post("/api/workflows", json={"name": "writes"}, headers=H).json()
    for writing in (
        "DELETE FROM dbo.customers",
        "SELECT * INTO dbo.copy FROM dbo.customers",
        "EXEC sp_configure 'show advanced options', 1",
    ):
        job = {
            "name": "Writes",
            "type": "database",
            "sourceConfig": {
                "type": "sql-server",
                "databaseConfig": {"connectionId": saved, "query": writing},
            },
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_writes"}},
        }
        refused = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H)
        assert refused.status_code == 422, (writing, refused.text)
    with mssql_source["source"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM dbo.customers")
        assert cursor.fetchone()[0] == 5


QUALIFIED = [
    "CREATE SCHEMA sales",
    "CREATE SCHEMA risk",
    "CREATE TABLE sales.Orders (id int NOT NULL PRIMARY KEY, amount decimal(10,2) NOT NULL)",
    "INSERT INTO sales.Orders VALUES (1, 10.50), (2, 20.25), (3, 30.00)",
    # a decoy of the same name in the default schema: the schema part must be used
    "CREATE TABLE dbo.Orders (id int NOT NULL PRIMARY KEY, amount decimal(10,2) NOT NULL)",
    "INSERT INTO dbo.Orders VALUES (99, 0)",
    """CREATE PROCEDURE risk.usp_exposures_since @since int AS
BEGIN
    SELECT id, amount FROM sales.Orders WHERE id >= @since ORDER BY id
END""",
]


def test_sql_server_schema_qualified_table_and_procedure_jobs_run(api, mssql_source):
    """Issue 11: ``sales.Orders`` and ``risk.usp_exposures_since`` used to be sent as
    ``[sales.Orders]`` and ``EXEC [risk.usp_exposures_since]``, which fail on the server."""
    database = mssql_source["database"]
    with mssql_source["source"].cursor() as cursor:
        for statement in QUALIFIED:
            cursor.execute(statement)
    saved = save(api, mssql_source["live"], database)
    cases = [
        ({"tableName": "sales.Orders"}, "bronze_mssql_sales_orders", [1, 2, 3]),
        ({"tableName": f"[{database}].[sales].[Orders]"}, "bronze_mssql_sales_orders_3", [1, 2, 3]),
        (
            {"storedProcedure": "risk.usp_exposures_since", "parameters": {"since": 2}},
            "bronze_mssql_exposures",
            [2, 3],
        ),
    ]
    for database_config, table, ids in cases:
        workflow_id, _job = job_workflow(api, {"connectionId": saved, **database_config}, table)
        done = run(api, workflow_id)
        assert done["status"] == "succeeded", (database_config, done)
        assert sorted(row["id"] for row in bronze(api, table).to_pylist()) == ids

"""Database sources end to end against the real PostgreSQL and MariaDB on this machine:
connection checks through the operations path, then incremental database jobs into bronze."""

import datetime as dt
import uuid
from decimal import Decimal

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings, require_service
from tests.connections.conftest import wait

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def pg_source():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"ff_src_{uuid.uuid4().hex[:10]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as c:
        c.execute("CREATE ROLE ff_reader LOGIN PASSWORD 'R3ader;P{w}d=' ") if not c.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = 'ff_reader'"
        ).fetchone() else None
        c.execute(
            "CREATE TABLE customers (customer_id int PRIMARY KEY, name text, balance numeric(18,2),"
            " modified_date timestamp(6) NOT NULL)"
        )
        c.execute("CREATE VIEW rich AS SELECT * FROM customers WHERE balance > 1000")
        c.execute(f'GRANT CONNECT ON DATABASE "{name}" TO ff_reader')
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO ff_reader")
    yield {
        "database": name,
        "connect": lambda: psycopg.connect(
            f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True
        ),
    }
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def save_pg(api, database, password="R3ader;P{w}d="):
    body = {
        "name": f"pg-{uuid.uuid4().hex[:6]}",
        "type": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "database": database,
        "username": "ff_reader",
        "password": password,
    }
    response = api.post("/api/connections", json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()


def test_connection_checks_through_the_worker_path(api, pg_source):
    saved = save_pg(api, pg_source["database"])
    ok = api.post("/api/test-connection/database", json={"connectionId": saved["id"]}, headers=H)
    assert ok.status_code == 200, ok.text
    answer = ok.json()
    assert answer["success"] is True and answer["serverVersion"]
    assert {"customers", "rich"} <= {t["name"] for t in answer["tables"]}

    # This machine's PostgreSQL trusts every local login, so a wrong password cannot fail
    # here; an unknown user does, and is a login failure too.
    wrong = save_pg(api, pg_source["database"], password="not-it")
    changed = api.patch(
        f"/api/connections/{wrong['id']}",
        json={"username": "nobody_here", "version": wrong["version"]},
        headers=H,
    )
    assert changed.status_code == 200, changed.text
    failed = api.post(
        "/api/test-connection/database", json={"connectionId": wrong["id"]}, headers=H
    ).json()
    assert failed["success"] is False and failed["kind"] == "login"
    assert "not-it" not in str(failed)

    missing_db = api.post(
        "/api/test-connection/database",
        json={
            "connection": {
                "type": "postgresql",
                "host": "127.0.0.1",
                "port": 5432,
                "database": "no_such_db_here",
                "username": "ff_reader",
                "password": "R3ader;P{w}d=",
            }
        },
        headers=H,
    ).json()
    assert missing_db["success"] is False and missing_db["kind"] == "database"
    refused = api.post(
        "/api/test-connection/database",
        json={
            "connection": {
                "type": "postgresql",
                "host": "127.0.0.1",
                "port": 1,
                "database": "x",
                "username": "u",
                "password": "p",
            }
        },
        headers=H,
    ).json()
    assert refused["success"] is False and refused["kind"] == "refused"

    tables = api.get("/api/database/tables", params={"connectionId": saved["id"]}, headers=H).json()
    kinds = {t["name"]: t["kind"] for t in tables["data"]}
    assert kinds["customers"] == "table" and kinds["rich"] == "view"
    schema = api.get(
        "/api/database/schema",
        params={"connectionId": saved["id"], "table": "customers"},
        headers=H,
    ).json()
    columns = {c["name"]: c for c in schema["columns"]}
    assert columns["customer_id"]["primaryKey"] is True
    assert columns["balance"]["arrowType"] == "decimal128(18, 2)"
    preview = api.get(
        "/api/database/preview",
        params={"connectionId": saved["id"], "table": "customers", "limit": 5},
        headers=H,
    )
    assert preview.status_code == 200, preview.text
    assert "R3ader" not in api.get("/api/audit", headers=H).text


def test_incremental_database_job_reads_each_change_exactly_once(api, pg_source):
    saved = save_pg(api, pg_source["database"])
    base = dt.datetime(2024, 1, 1, 12, 0, 0, 123456)
    with pg_source["connect"]() as c:
        c.execute("TRUNCATE customers")
        for i in range(1, 6):
            c.execute(
                "INSERT INTO customers VALUES (%s, %s, %s, %s)",
                (i, f"c{i}", Decimal(f"{i}00.10"), base + dt.timedelta(minutes=i)),
            )
    workflow = api.post(
        "/api/workflows", json={"name": f"db-{uuid.uuid4().hex[:6]}"}, headers=H
    ).json()
    job = {
        "name": "Ingest customers",
        "type": "database",
        "sourceConfig": {
            "type": "postgresql",
            "databaseConfig": {
                "connectionId": saved["id"],
                "tableName": "customers",
                "isIncremental": True,
                "deltaColumn": "modified_date",
                "batchSize": 2,
            },
        },
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_customers"}},
    }
    created = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    first = wait(
        api, api.post(f"/api/workflows/{workflow['id']}/run", headers=H).json()["executionId"]
    )
    assert first["status"] == "succeeded", first
    assert first["jobs"][0]["rowsWritten"] == 5
    mark = api.get(f"/api/workflows/{workflow['id']}/jobs/{job_id}/watermark", headers=H).json()
    assert mark["watermark"]["column"] == "modified_date"
    assert mark["watermark"]["value"].startswith("2024-01-01T12:05:00.123456")

    with pg_source["connect"]() as c:
        c.execute(
            "UPDATE customers SET balance = 999.99, modified_date = %s WHERE customer_id = 2",
            (base + dt.timedelta(minutes=10),),
        )
        c.execute(
            "INSERT INTO customers VALUES (6, 'c6', 6.00, %s)", (base + dt.timedelta(minutes=10),)
        )
        # a late row: committed now with an older delta than the watermark is not re-read
        c.execute(
            "INSERT INTO customers VALUES (7, 'late', 7.00, %s)", (base + dt.timedelta(minutes=1),)
        )
    second = wait(
        api, api.post(f"/api/workflows/{workflow['id']}/run", headers=H).json()["executionId"]
    )
    assert second["status"] == "succeeded", second
    assert second["jobs"][0]["rowsWritten"] == 2  # the update and the tie, both at minute 10
    bronze = pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_customers")
    assert bronze.height == 7
    assert sorted(bronze.filter(pl.col("customer_id") == 2)["balance"].to_list()) == [
        Decimal("200.10"),
        Decimal("999.99"),
    ]

    third = wait(
        api, api.post(f"/api/workflows/{workflow['id']}/run", headers=H).json()["executionId"]
    )
    assert third["jobs"][0]["rowsWritten"] == 0
    assert pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_customers").height == 7

    assert (
        api.delete(
            f"/api/workflows/{workflow['id']}/jobs/{job_id}/watermark", headers=H
        ).status_code
        == 204
    )
    full = wait(
        api, api.post(f"/api/workflows/{workflow['id']}/run", headers=H).json()["executionId"]
    )
    assert full["jobs"][0]["rowsWritten"] == 7  # a full reload after the reset


def test_lookback_takes_late_and_tied_rows_once_and_nothing_twice(tmp_path, pg_source):
    from flowforge.app import create_app

    app = create_app(make_settings(tmp_path, incremental_lookback_seconds=3600))
    with TestClient(app) as api:
        saved = save_pg(api, pg_source["database"])
        base = dt.datetime(2024, 3, 1, 9, 0, 0, 1)
        with pg_source["connect"]() as c:
            c.execute(
                "CREATE TABLE events (id int PRIMARY KEY, v text, modified_date timestamp(6) NOT NULL)"
            )
            c.execute("GRANT SELECT ON events TO ff_reader")
            for i in range(1, 4):
                c.execute(
                    "INSERT INTO events VALUES (%s, %s, %s)",
                    (i, f"v{i}", base + dt.timedelta(minutes=i)),
                )
        workflow = api.post(
            "/api/workflows", json={"name": f"lb-{uuid.uuid4().hex[:6]}"}, headers=H
        ).json()
        job = {
            "name": "Ingest events",
            "type": "database",
            "sourceConfig": {
                "type": "postgresql",
                "databaseConfig": {
                    "connectionId": saved["id"],
                    "tableName": "events",
                    "isIncremental": True,
                    "deltaColumn": "modified_date",
                },
            },
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_events"}},
        }
        assert (
            api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H).status_code
            == 201
        )

        def run():
            started = api.post(f"/api/workflows/{workflow['id']}/run", headers=H).json()
            return wait(api, started["executionId"])

        assert run()["jobs"][0]["rowsWritten"] == 3
        with pg_source["connect"]() as c:
            # a tie: the same delta value as the watermark, committed after the first run
            c.execute("INSERT INTO events VALUES (4, 'tie', %s)", (base + dt.timedelta(minutes=3),))
            # a late row: an older delta value, committed now
            c.execute(
                "INSERT INTO events VALUES (5, 'late', %s)",
                (base + dt.timedelta(minutes=2, seconds=30),),
            )
        second = run()
        assert second["status"] == "succeeded", second
        assert second["jobs"][0]["rowsWritten"] == 2
        assert run()["jobs"][0]["rowsWritten"] == 0
        bronze = pl.read_delta(f"{app.state.settings.lake_root}/bronze/bronze_events")
        assert sorted(bronze["id"].to_list()) == [1, 2, 3, 4, 5]
    app.state.database.dispose()


# --- qualified names (issue 11), through real runs ----------------------------------------------


def run_workflow(api, jobs: list[dict]) -> tuple[dict, dict]:
    """Run a new workflow holding ``jobs``; (the finished execution, job id by job name)."""
    workflow = api.post(
        "/api/workflows", json={"name": f"names-{uuid.uuid4().hex[:6]}"}, headers=H
    ).json()
    ids = {}
    for job in jobs:
        created = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H)
        assert created.status_code == 201, created.text
        ids[job["name"]] = created.json()["id"]
    started = api.post(f"/api/workflows/{workflow['id']}/run", headers=H)
    assert started.status_code in (200, 201, 202), started.text
    return wait(api, started.json()["executionId"]), ids


def named_job(db_type: str, connection_id: str, bronze_table: str, **database_config) -> dict:
    return {
        "name": f"Ingest {bronze_table}",
        "type": "database",
        "sourceConfig": {
            "type": db_type,
            "databaseConfig": {"connectionId": connection_id, **database_config},
        },
        "destinationConfig": {"bronzeConfig": {"tableName": bronze_table}},
    }


def test_postgres_schema_qualified_table_and_function_jobs_run(api, pg_source):
    with pg_source["connect"]() as c:
        c.execute("CREATE SCHEMA sales")
        c.execute("CREATE SCHEMA risk")
        c.execute('CREATE TABLE sales."Orders" (id int PRIMARY KEY, amount numeric(10,2))')
        c.execute('INSERT INTO sales."Orders" VALUES (1, 10.50), (2, 20.25), (3, 30.00)')
        # a decoy of the same name in the default schema: the schema part must be used
        c.execute('CREATE TABLE public."Orders" (id int PRIMARY KEY, amount numeric(10,2))')
        c.execute('INSERT INTO public."Orders" VALUES (99, 0)')
        c.execute(
            "CREATE FUNCTION risk.exposures_since(since int) "
            "RETURNS TABLE (id int, amount numeric(10,2)) LANGUAGE sql STABLE AS "
            '$$ SELECT id, amount FROM sales."Orders" WHERE id >= since $$'
        )
        c.execute("GRANT USAGE ON SCHEMA sales, risk TO ff_reader")
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA sales, public TO ff_reader")
    saved = save_pg(api, pg_source["database"])
    execution, _ = run_workflow(
        api,
        [
            named_job("postgresql", saved["id"], "bronze_sales_orders", tableName="sales.Orders"),
            named_job(
                "postgresql",
                saved["id"],
                "bronze_exposures",
                storedProcedure='"risk"."exposures_since"',
                parameters={"since": 2},
            ),
            named_job(
                "postgresql",
                saved["id"],
                "bronze_sales_orders_3",
                tableName=f'"{pg_source["database"]}".sales."Orders"',
            ),
        ],
    )
    assert execution["status"] == "succeeded", execution
    orders = pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_sales_orders")
    assert sorted(orders["id"].to_list()) == [1, 2, 3]
    assert set(orders["_source"].to_list()) == {f"{pg_source['database']}.sales.Orders"}
    exposures = pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_exposures")
    assert sorted(exposures["id"].to_list()) == [2, 3]
    three_parts = pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_sales_orders_3")
    assert sorted(three_parts["id"].to_list()) == [1, 2, 3]


@pytest.fixture(scope="module")
def mariadb_databases():
    """Two MariaDB databases: the connection's own (empty) and ``other`` holding the data."""
    require_service("MariaDB", "127.0.0.1", 3306)
    import pymysql

    own, other = (f"ff_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("own", "other"))
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{own}`")
            cursor.execute(f"CREATE DATABASE `{other}`")
            cursor.execute(f"CREATE TABLE `{other}`.`Orders` (id int PRIMARY KEY, note text)")
            cursor.execute(f"INSERT INTO `{other}`.`Orders` VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            cursor.execute(
                f"CREATE PROCEDURE `{other}`.`orders_since`(IN since int) READS SQL DATA "
                f"SELECT id, note FROM `{other}`.`Orders` WHERE id >= since"
            )
        yield {"own": own, "other": other}
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{own}`")
            cursor.execute(f"DROP DATABASE IF EXISTS `{other}`")
        connection.close()


def test_mariadb_database_qualified_table_and_procedure_jobs_run(api, mariadb_databases):
    own, other = mariadb_databases["own"], mariadb_databases["other"]
    saved = api.post(
        "/api/connections",
        json={
            "name": f"maria-{uuid.uuid4().hex[:6]}",
            "type": "mysql",
            "host": "127.0.0.1",
            "port": 3306,
            "database": own,
            "username": "root",
        },
        headers=H,
    )
    assert saved.status_code == 201, saved.text
    connection_id = saved.json()["id"]
    execution, _ = run_workflow(
        api,
        [
            named_job("mysql", connection_id, "bronze_other_orders", tableName=f"{other}.Orders"),
            named_job(
                "mysql",
                connection_id,
                "bronze_orders_since",
                storedProcedure=f"`{other}`.`orders_since`",
                parameters={"since": 2},
            ),
        ],
    )
    assert execution["status"] == "succeeded", execution
    orders = pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_other_orders")
    assert sorted(orders["id"].to_list()) == [1, 2, 3]
    assert set(orders["_source"].to_list()) == {f"{other}.Orders"}
    since = pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_orders_since")
    assert sorted(since["note"].to_list()) == ["b", "c"]

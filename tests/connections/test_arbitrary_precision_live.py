"""Numbers of arbitrary precision land exactly, through the product: PostgreSQL ``numeric``
without precision and ``numeric(50,20)``, MariaDB ``DECIMAL(65,30)``, each holding values no
``decimal128(38, s)`` can (1e40, 1e-21, 39 significant digits, NaN and +/-Infinity), loaded by
a database job into bronze and merged into silver. They are stored as their exact decimal
text, the source type recorded in the column's metadata (see docs/connectors.md)."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from tests.conftest import require_service
from tests.connections.test_type_zoo_live import (
    PG_ADMIN,
    H,
    save_connection,
    save_pg,
    start_app,
    start_run,
    wait,
)

H_VALUES = {
    1: "10000000000000000000000000000000000000000",  # 1e40
    2: "0.000000000000000000001",  # 1e-21
    3: "123456789012345678901234567890.123456789",
    4: "-1.50",
    5: None,
}


def run_job(api, connection_id: str, db_type: str, table: str) -> dict:
    workflow = api.post(
        "/api/workflows",
        json={"name": f"big-{uuid.uuid4().hex[:6]}"},
        headers=api.headers,
    ).json()
    jobs = [
        {
            "name": "Ingest big",
            "type": "database",
            "sourceConfig": {
                "type": db_type,
                "databaseConfig": {"connectionId": connection_id, "tableName": table},
            },
            "destinationConfig": {"bronzeConfig": {"tableName": "bronze_big"}},
        },
        {
            "name": "Silver big",
            "type": "gold-analytics",
            "sourceConfig": {"type": "multi-table", "tables": ["bronze_big"]},
            "destinationConfig": {"silverConfig": {"tableName": "silver_big", "primaryKey": "id"}},
        },
    ]
    for job in jobs:
        created = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=api.headers)
        assert created.status_code == 201, created.text
    execution = wait(api, start_run(api, workflow["id"]))
    assert execution["status"] == "succeeded", execution
    return execution


def stored(api, layer: str) -> tuple[pa.Schema, dict]:
    from deltalake import DeltaTable

    table = DeltaTable(f"{api.settings.lake_root}/{layer}/{layer}_big")
    data = table.to_pyarrow_table()
    return pa.schema(table.schema().to_arrow()), {row["id"]: row for row in data.to_pylist()}


@pytest.fixture
def headers_api(tmp_path):
    app, client = start_app(tmp_path)
    client.headers = H
    yield client
    client.__exit__(None, None, None)
    app.state.database.dispose()


def test_postgres_numerics_beyond_decimal128_land_as_exact_text(headers_api):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    name = f"ff_big_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as connection:
            connection.execute("CREATE TABLE big (id int PRIMARY KEY, n numeric, w numeric(50,20))")
            for key, value in H_VALUES.items():
                connection.execute(
                    "INSERT INTO big VALUES (%s, %s::numeric, %s::numeric)",
                    (key, value, None if key == 1 else value),
                )
            connection.execute(
                "INSERT INTO big VALUES (6, 'NaN', 'NaN'), (7, 'Infinity', NULL), "
                "(8, '-Infinity', NULL)"
            )
        run_job(headers_api, save_pg(headers_api, name), "postgresql", "big")
        expected = {
            **H_VALUES,
            6: "NaN",
            7: "Infinity",
            8: "-Infinity",
        }
        expected_w = {
            1: None,
            2: "0.00000000000000000000",  # numeric(50,20) rounded it on INSERT (PostgreSQL)
            3: "123456789012345678901234567890.12345678900000000000",
            4: "-1.50000000000000000000",
            5: None,
            6: "NaN",
            7: None,
            8: None,
        }
        for layer in ("bronze", "silver"):
            schema, rows = stored(headers_api, layer)
            assert schema.field("n").type == pa.string() and schema.field("w").type == pa.string()
            assert schema.field("n").metadata[b"flowforge.source_type"] == b"numeric"
            assert {key: row["n"] for key, row in rows.items()} == expected
            assert {key: row["w"] for key, row in rows.items()} == expected_w
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_mariadb_decimal_65_30_lands_as_exact_text(headers_api):
    require_service("MariaDB", "127.0.0.1", 3306)
    import pymysql

    name = f"ff_big_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
            cursor.execute(f"USE `{name}`")
            cursor.execute("CREATE TABLE big (id int PRIMARY KEY, n DECIMAL(65,30))")
            cursor.execute(
                "INSERT INTO big VALUES (1, 1e34), (2, 0.000000000000000000001), "
                "(3, 123456789012345678901234567890.123456789), (4, -1.5), (5, NULL)"
            )
        connection.commit()
        connection_id = save_connection(
            headers_api, type="mysql", host="127.0.0.1", port=3306, database=name, username="root"
        )
        run_job(headers_api, connection_id, "mysql", "big")
        zeros = "0" * 30
        expected = {
            1: "10000000000000000000000000000000000." + zeros,
            2: "0.000000000000000000001" + "0" * 9,
            3: "123456789012345678901234567890.123456789" + "0" * 21,
            4: "-1.5" + "0" * 29,
            5: None,
        }
        for layer in ("bronze", "silver"):
            schema, rows = stored(headers_api, layer)
            assert schema.field("n").type == pa.string()
            assert schema.field("n").metadata[b"flowforge.source_type"] == b"decimal(65,30)"
            assert {key: row["n"] for key, row in rows.items()} == expected
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()

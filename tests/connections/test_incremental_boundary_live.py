"""Incremental loads under default settings (no lookback) never lose a row at the watermark.

A row committed after a run with the same delta value as the stored watermark (a tie) used to
be skipped for good: reads were ``delta > watermark``. Now a run reads ``delta >= watermark``
and drops the rows bronze already holds by (key, delta), so every source row version lands in
bronze exactly once. Against the real PostgreSQL and MariaDB on this machine, through the API
and real job runs; bronze is read back with polars, never through the code under test.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections import Counter

import polars as pl
import pytest

from tests.conftest import ADMIN_TOKEN, require_service
from tests.connections.conftest import wait

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
T0 = dt.datetime(2024, 6, 1, 9, 0, 0, 250000)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


class Postgres:
    kind = "postgresql"
    port = 5432
    table_sql = "CREATE TABLE {name} (id int {pk}, v text, modified_date timestamp(6) NOT NULL)"

    def __init__(self) -> None:
        require_service("PostgreSQL", "127.0.0.1", self.port)
        import psycopg

        self.database = f"ff_tie_{uuid.uuid4().hex[:10]}"
        self._admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
        with psycopg.connect(self._admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')

    def execute(self, sql: str, params: tuple = ()) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 user=postgres dbname={self.database}"
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(sql.replace("?", "%s"), params)

    def connection(self) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "username": "postgres"}

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self._admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


class MariaDB:
    kind = "mysql"
    port = 3306
    table_sql = "CREATE TABLE {name} (id int {pk}, v text, modified_date datetime(6) NOT NULL)"

    def __init__(self) -> None:
        require_service("MariaDB", "127.0.0.1", self.port)
        self.database = f"ff_tie_{uuid.uuid4().hex[:10]}"
        with self._connect(None) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{self.database}`")

    def _connect(self, database: str | None):
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            database=database,
            autocommit=True,
        )

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self._connect(self.database) as connection, connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)

    def connection(self) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "username": "root"}

    def drop(self) -> None:
        with self._connect(None) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{self.database}`")


class SqlServer:
    """FLOWFORGE_TEST_MSSQL_URL's server (skipped when unset); datetime2(7) delta values."""

    kind = "sql-server"
    table_sql = (
        "CREATE TABLE {name} (id int {pk}, v nvarchar(50), modified_date datetime2(7) NOT NULL)"
    )

    def __init__(self) -> None:
        from tests.ingest.connector_fixtures import params_from_env

        self.live = params_from_env("FLOWFORGE_TEST_MSSQL_URL", "sql-server")
        self.database = f"ff_tie_{uuid.uuid4().hex[:10]}"
        with self._connect(self.live.database or "master") as connection:
            connection.cursor().execute(f"CREATE DATABASE {self.database}")

    def _connect(self, database: str):
        from dataclasses import replace

        from flowforge_ingest.connectors.registry import connector_for

        return connector_for("sql-server").connect(replace(self.live, database=database))

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self._connect(self.database) as connection:
            connection.cursor().execute(sql, params) if params else connection.cursor().execute(sql)

    def connection(self) -> dict:
        live = self.live
        return {
            "host": live.host,
            "port": live.port or 1433,
            "username": live.username,
            "password": live.password,
            "options": {
                key: value
                for key, value in live.options.items()
                if key in ("encrypt", "trustServerCertificate", "caFile", "hostNameInCertificate")
            },
        }

    def drop(self) -> None:
        from tests.ingest.connector_fixtures import drop_sql_server_database

        with self._connect(self.live.database or "master") as connection:
            drop_sql_server_database(connection, self.database)


@pytest.fixture(params=[Postgres, MariaDB, SqlServer], ids=["postgresql", "mariadb", "sql-server"])
def source(request):
    database = request.param()
    yield database
    database.drop()


class Workflow:
    """One workflow holding one incremental database job, run through the API."""

    def __init__(self, api, source, database_config: dict, table: str) -> None:
        self.api, self.table = api, table
        fields = source.connection()
        ca_file = fields.get("options", {}).get("caFile")
        if ca_file:  # a CA file is read only from the operators' CA folder
            api.settings.ca_root.mkdir(parents=True, exist_ok=True)
            shutil.copy(ca_file, api.settings.ca_root / "source-ca.pem")
            fields["options"]["caFile"] = "source-ca.pem"
        connection = api.post(
            "/api/connections",
            json={
                "name": f"src-{uuid.uuid4().hex[:6]}",
                "type": source.kind,
                "database": source.database,
                **fields,
            },
            headers=H,
        )
        assert connection.status_code == 201, connection.text
        self.id = api.post(
            "/api/workflows", json={"name": f"tie-{uuid.uuid4().hex[:6]}"}, headers=H
        ).json()["id"]
        job = {
            "name": f"Ingest {table}",
            "type": "database",
            "sourceConfig": {
                "type": source.kind,
                "databaseConfig": {
                    "connectionId": connection.json()["id"],
                    "isIncremental": True,
                    "deltaColumn": "modified_date",
                    "batchSize": 2,
                    **database_config,
                },
            },
            "destinationConfig": {"bronzeConfig": {"tableName": f"bronze_{table}"}},
        }
        created = api.post(f"/api/workflows/{self.id}/jobs", json=job, headers=H)
        assert created.status_code == 201, created.text
        self.job = created.json()

    def run(self) -> dict:
        started = self.api.post(f"/api/workflows/{self.id}/run", headers=H).json()
        execution = wait(self.api, started["executionId"])
        assert execution["status"] == "succeeded", execution
        return execution["jobs"][0]

    def bronze(self) -> list[tuple]:
        """(id, v, modified_date) of every bronze row, one entry per row."""
        table = pl.read_delta(f"{self.api.settings.lake_root}/bronze/bronze_{self.table}")
        return [
            (row["id"], row["v"], row["modified_date"].replace(tzinfo=None))
            for row in table.select("id", "v", "modified_date").to_dicts()
        ]


def assert_exactly_once(bronze: list[tuple], versions: set[tuple]) -> None:
    """Bronze holds each source row version once: no version missing, none twice."""
    repeated = {row: n for row, n in Counter(bronze).items() if n > 1}
    assert not repeated, f"loaded more than once: {repeated}"
    assert set(bronze) == versions, (
        f"missing {versions - set(bronze)}, unexpected {set(bronze) - versions}"
    )


@pytest.mark.parametrize("key", ["primary key", "uniqueKey"])
def test_a_row_tied_with_the_watermark_is_loaded_once_under_default_settings(api, source, key):
    table = f"items_{uuid.uuid4().hex[:6]}"
    with_pk = key == "primary key"
    source.execute(source.table_sql.format(name=table, pk="PRIMARY KEY" if with_pk else ""))
    insert = f"INSERT INTO {table} VALUES (?, ?, ?)"
    for row in [(1, "a", at(1)), (2, "b", at(2)), (3, "c", at(3)), (4, "d", at(3))]:
        source.execute(insert, row)
    versions = {(1, "a", at(1)), (2, "b", at(2)), (3, "c", at(3)), (4, "d", at(3))}
    workflow = Workflow(
        api,
        source,
        {"tableName": table} if with_pk else {"tableName": table, "uniqueKey": ["id"]},
        table,
    )

    assert workflow.run()["rowsWritten"] == 4
    assert_exactly_once(workflow.bronze(), versions)

    # Committed after run 1: a row with the watermark's own value (a tie), a newer row, and
    # an update that moves row 1 past the watermark (a new version of it).
    source.execute(insert, (5, "tie", at(3)))
    source.execute(insert, (6, "new", at(4)))
    source.execute(f"UPDATE {table} SET v = 'a2', modified_date = ? WHERE id = 1", (at(5),))
    versions |= {(5, "tie", at(3)), (6, "new", at(4)), (1, "a2", at(5))}
    assert workflow.run()["rowsWritten"] == 3
    assert_exactly_once(workflow.bronze(), versions)

    # A tie with the new watermark while the source's maximum stays where it was.
    source.execute(insert, (7, "tie again", at(5)))
    versions.add((7, "tie again", at(5)))
    assert workflow.run()["rowsWritten"] == 1
    assert_exactly_once(workflow.bronze(), versions)

    # Nothing changed: the rows at the watermark are read again and none is loaded twice.
    assert workflow.run()["rowsWritten"] == 0
    assert_exactly_once(workflow.bronze(), versions)

    if with_pk:
        # The catalog cannot see the source's primary key on save: it says what happens
        # without one.
        [warning] = workflow.job["warnings"]
        assert f"If {table} has none" in warning["msg"]
    else:
        assert "warnings" not in workflow.job  # a key is named: nothing to warn about


def test_without_a_key_a_tied_row_is_still_loaded_and_the_save_says_what_to_fix(api, source):
    table = f"logs_{uuid.uuid4().hex[:6]}"
    source.execute(source.table_sql.format(name=table, pk=""))
    insert = f"INSERT INTO {table} VALUES (?, ?, ?)"
    for row in [(1, "a", at(1)), (2, "b", at(2))]:
        source.execute(insert, row)
    workflow = Workflow(api, source, {"query": f"SELECT id, v, modified_date FROM {table}"}, table)
    assert workflow.run()["rowsWritten"] == 2
    source.execute(insert, (3, "tie", at(2)))
    source.execute(insert, (4, "new", at(3)))
    workflow.run()
    # Without a key the row at the old watermark may come twice, but no row is lost.
    loaded = workflow.bronze()
    assert set(loaded) == {(1, "a", at(1)), (2, "b", at(2)), (3, "tie", at(2)), (4, "new", at(3))}
    assert all(n == 1 for row, n in Counter(loaded).items() if row != (2, "b", at(2)))

    # Said when the job is saved, and every time it is read back.
    job_url = f"/api/workflows/{workflow.id}/jobs/{workflow.job['id']}"
    for shown in (workflow.job, api.get(job_url, headers=H).json()):
        [warning] = shown["warnings"]
        assert warning["field"] == "sourceConfig.databaseConfig.uniqueKey"
        assert "no key is known for a query" in warning["msg"]
        assert "twice" in warning["msg"] and "missed" in warning["msg"]
    # Naming a key makes the warning go.
    database_config = {**workflow.job["sourceConfig"]["databaseConfig"], "uniqueKey": ["id"]}
    patched = api.patch(
        job_url,
        json={
            "sourceConfig": {**workflow.job["sourceConfig"], "databaseConfig": database_config},
            "version": workflow.job["version"],
        },
        headers=H,
    )
    assert patched.status_code == 200, patched.text
    assert "warnings" not in patched.json()

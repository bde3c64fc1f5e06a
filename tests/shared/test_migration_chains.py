"""Each service's migration chain: it builds the service's tables and no other's, in one
database with the others or in a database of its own, and a database the one chain of
before built is adopted with its rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from flowforge.app import MIGRATIONS, SERVICES, migrate, upgrade_all
from flowforge_shared.db.base import Base
from flowforge_shared.db.migrate import LEGACY_HEAD, alembic_config, legacy_upgrade
from tests.conftest import (
    PG_HOST,
    PG_PORT,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
    require_service,
)

VERSION_TABLES = {"alembic_version"} | {chain.version_table for chain in MIGRATIONS}
# Who owns which table (issue 13): no chain creates another service's tables.
OWNED = {
    "catalog": {
        "api_tokens",
        "workflows",
        "jobs",
        "audit_log",
        "catalog_assets",
        "uploaded_files",
        "connections",
        "workflow_templates",
    },
    "orchestrator": {
        "executions",
        "job_runs",
        "run_events",
        "job_watermarks",
        "triggers",
        "trigger_firings",
        "audit_outbox",
        "workflow_schedules",
    },
    "lineage": {
        "lineage_events",
        "lineage_jobs",
        "lineage_datasets",
        "lineage_edges",
        "lineage_runs",
        "lineage_column_edges",
    },
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_database(request, tmp_path) -> Iterator:
    """A factory of empty databases of one kind, dropped after the test."""
    made: list[str] = []

    def make(name: str) -> str:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / name}.db"
        else:
            require_service("PostgreSQL", PG_HOST, PG_PORT)
            url = create_postgres_database(f"flowforge_{name}")
        made.append(url)
        return url

    yield make
    for url in made:
        if url.startswith("postgresql"):
            drop_postgres_database(url)


def schema(url: str) -> dict:
    """Every table's columns, primary key, indexes, unique constraints and foreign keys, as
    the database itself reports them (names of unnamed constraints left out)."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        tables = {}
        for table in sorted(set(found.get_table_names()) - VERSION_TABLES):
            tables[table] = {
                "columns": {
                    column["name"]: (
                        str(column["type"]),
                        column["nullable"],
                        str(column.get("default")),
                    )
                    for column in found.get_columns(table)
                },
                "primary key": tuple(found.get_pk_constraint(table)["constrained_columns"]),
                "indexes": sorted(
                    (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                    for index in found.get_indexes(table)
                ),
                "unique": sorted(
                    tuple(unique["column_names"]) for unique in found.get_unique_constraints(table)
                ),
                "foreign keys": sorted(
                    (tuple(key["constrained_columns"]), key["referred_table"])
                    for key in found.get_foreign_keys(table)
                ),
            }
        return tables
    finally:
        engine.dispose()


def test_a_database_of_the_one_chain_of_before_ends_as_a_new_one(new_database):
    """Adopted by the service chains' first revisions, then upgraded by the later ones, a
    database the one chain built has exactly the schema the service chains build."""
    before, now = new_database("legacy"), new_database("chains")
    legacy_upgrade(before, LEGACY_HEAD)
    upgrade_all(before)
    upgrade_all(now)
    assert schema(before) == schema(now)


def test_each_service_in_a_database_of_its_own_has_its_tables_and_no_other(new_database, tmp_path):
    urls = {service: new_database(service) for service in SERVICES}
    settings = make_settings(
        tmp_path, **{f"{service}_database_url": url for service, url in urls.items()}
    )
    migrate(settings)
    for service, url in urls.items():
        assert set(schema(url)) == OWNED[service], service


def test_every_model_is_made_by_the_chain_of_the_service_that_defines_it():
    import flowforge_catalog.api  # noqa: F401 - every model registered on the one Base
    import flowforge_lineage.api  # noqa: F401
    import flowforge_orchestrator.api  # noqa: F401

    owner_of = {table: service for service, tables in OWNED.items() for table in tables}
    for mapper in Base.registry.mappers:
        table, module = mapper.local_table.name, mapper.class_.__module__
        assert module.startswith(f"flowforge_{owner_of[table]}."), (table, module)


def test_a_database_of_the_one_chain_is_adopted_with_its_rows(new_database):
    url = new_database("old")
    legacy_upgrade(url, "0011")  # an older database: the one chain finishes first
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO workflows (id, name, description, environment, tags, status, "
                    "created_at, updated_at, version) VALUES ('w1', 'kept', '', 'dev', '[]', "
                    "'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
                )
            )
        upgrade_all(url)
        upgrade_all(url)  # and again: nothing left to do
        with engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM workflows")).scalars().all() == [
                "kept"
            ]
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                LEGACY_HEAD
            )
            for chain in MIGRATIONS:
                head = ScriptDirectory.from_config(
                    alembic_config(url, chain.location, chain.version_table)
                ).get_current_head()
                assert (
                    connection.execute(
                        text(f"SELECT version_num FROM {chain.version_table}")  # noqa: S608
                    ).scalar()
                    == head
                )
    finally:
        engine.dispose()

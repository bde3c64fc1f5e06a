"""The write side under hostile delivery: a few hundred realistic events (tests/lineage/
realistic.py) applied in order, replayed, shuffled, batched, and applied by concurrent
threads and processes, on SQLite and PostgreSQL, leave the very same rows in every
``lineage_*`` table (compared as sets; only ``applied_at``, the clock of the applier, may
differ)."""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from flowforge.app import upgrade_all
from flowforge_lineage.graph import models
from flowforge_lineage.graph.consumer import record_event, record_events
from flowforge_shared.db.engine import Database
from tests.conftest import (
    PG_HOST,
    PG_PORT,
    create_postgres_database,
    drop_postgres_database,
    require_service,
)
from tests.lineage.realistic import realistic_events

TABLES = [
    models.LineageEvent,
    models.LineageJob,
    models.LineageDataset,
    models.LineageEdge,
    models.LineageRun,
    models.LineageColumnEdge,
]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return value


def contents(database: Database) -> dict[str, set[tuple]]:
    """Every row of every lineage table, as a set per table (``applied_at`` left out)."""
    found = {}
    with database.engine.connect() as connection:
        for model in TABLES:
            table = model.__table__
            columns = [column for column in table.columns if column.name != "applied_at"]
            found[table.name] = {
                tuple(_plain(value) for value in row)
                for row in connection.execute(select(*columns))
            }
    return found


def _differences(got: dict[str, set], expected: dict[str, set]) -> dict[str, Any]:
    return {
        name: {
            "missing": sorted(map(str, expected[name] - got[name]))[:3],
            "extra": sorted(map(str, got[name] - expected[name]))[:3],
        }
        for name in expected
        if got[name] != expected[name]
    }


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return realistic_events()


@pytest.fixture(scope="module")
def expected(events, tmp_path_factory) -> dict[str, set]:
    """The tables after applying every event once, in order, on SQLite."""
    url = f"sqlite:///{tmp_path_factory.mktemp('in-order') / 'lineage.db'}"
    upgrade_all(url)
    database = Database(url)
    try:
        assert all(record_event(database, event) for event in events)
        return contents(database)
    finally:
        database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request, tmp_path) -> Iterator:
    """A factory of fresh, migrated databases of one kind; all dropped at the end."""
    made: list[tuple[Database, str]] = []

    def make() -> Database:
        if request.param == "postgres":
            require_service("PostgreSQL", PG_HOST, PG_PORT)
            url = create_postgres_database("flowforge_lineage_order")
        else:
            url = f"sqlite:///{tmp_path / f'lineage-{len(made)}.db'}"
        upgrade_all(url)
        database = Database(url)
        made.append((database, url))
        return database

    make.kind = request.param
    yield make
    for database, url in made:
        database.dispose()
        if url.startswith("postgresql"):
            drop_postgres_database(url)


def test_the_events_are_realistic(events, expected):
    kinds = {event["eventType"] for event in events}
    assert len(events) >= 250 and kinds == {
        "START",
        "RUNNING",
        "COMPLETE",
        "FAIL",
        "ABORT",
        "OTHER",
    }
    assert len(expected["lineage_column_edges"]) > 20 and len(expected["lineage_runs"]) > 60
    layers = {row[2] for row in expected["lineage_datasets"]}
    assert layers == {"source", "bronze", "silver", "gold"}


def test_in_order_replayed_shuffled_and_batched_give_the_same_tables(fresh, events, expected):
    database = fresh()
    assert all(record_event(database, event) for event in events)
    assert _differences(contents(database), expected) == {}
    for _ in range(2):  # replays change nothing
        assert not any(record_event(database, event) for event in events)
    assert record_events(database, events[::-1]) == [False] * len(events)
    assert _differences(contents(database), expected) == {}
    for seed in ("reversed", 1, 2, 3):
        shuffled = list(events)
        if seed == "reversed":  # every "first" (writer, description) seen last
            shuffled.reverse()
        else:
            random.Random(seed).shuffle(shuffled)
        database = fresh()
        assert all(record_event(database, event) for event in shuffled)
        assert _differences(contents(database), expected) == {}, f"order {seed}"
    # A backlog in batches, shuffled, with a third of the events delivered twice.
    redelivered = events + events[: len(events) // 3]
    random.Random(4).shuffle(redelivered)
    database = fresh()
    applied = []
    for start in range(0, len(redelivered), 64):
        applied += record_events(database, redelivered[start : start + 64])
    assert applied.count(True) == len(events)
    assert _differences(contents(database), expected) == {}


def _apply(url: str, events: list[dict[str, Any]], batch: int) -> int:
    """One applier (a thread or a process of its own): how many events it applied first."""
    database = Database(url)
    try:
        applied = 0
        for start in range(0, len(events), batch):
            applied += sum(record_events(database, events[start : start + batch]))
        return applied
    finally:
        database.dispose()


@pytest.mark.parametrize("pool", ["processes", "threads"])
def test_concurrent_appliers_of_overlapping_shuffled_parts_end_in_the_same_tables(
    fresh, events, expected, pool
):
    if pool == "threads" and fresh.kind == "sqlite":
        pytest.skip("threads of one process take turns on SQLite (the consumer's lock)")
    database = fresh()
    url = database.url
    # Three appliers; each event is in two of their parts, each part in an order of its own.
    parts = []
    for number in range(3):
        part = [event for index, event in enumerate(events) if index % 3 != number]
        random.Random(number).shuffle(part)
        parts.append(part)
    batches = [1, 1, 16]
    if pool == "processes":
        executor = ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn"))
    else:
        executor = ThreadPoolExecutor(3)
    with executor:
        applied = list(executor.map(_apply, [url] * 3, parts, batches))
    assert sum(applied) == len(events)  # each event applied exactly once among them
    assert _differences(contents(database), expected) == {}

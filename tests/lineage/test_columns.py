"""Column edges from the columnLineage facets of run events: newest event wins per table and
job, in any order; the walk up and down one column."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import select

from flowforge.app import upgrade_all
from flowforge_lineage.columns.service import column_lineage, columns_of
from flowforge_lineage.graph.apply import apply_event
from flowforge_lineage.graph.models import LineageColumnEdge, LineageDataset
from flowforge_shared.contracts.column_lineage import Source, facet
from flowforge_shared.db.engine import Database

SRC = ("landing", "tx.csv")
BRONZE = ("lake", "bronze.tx")
GOLD = ("lake", "gold.totals")


@pytest.fixture
def database(tmp_path):
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    upgrade_all(url)
    database = Database(url)
    yield database
    database.dispose()


def event(
    job_id: str,
    source: tuple,
    target: tuple,
    fields: dict,
    *,
    second: int,
    event_type: str = "COMPLETE",
) -> dict:
    lineage = facet(
        {column: [Source(*source, *how) for how in hows] for column, hows in fields.items()}
    )
    return {
        "eventType": event_type,
        "eventTime": f"2026-12-06T04:00:{second:02d}+00:00",
        "run": {
            "runId": str(uuid.uuid4()),
            "facets": {
                "flowforge_run": {"jobId": job_id, "workflowId": "w1", "eventId": str(uuid.uuid4())}
            },
        },
        "job": {"namespace": "flowforge", "name": f"wf.{job_id}"},
        "inputs": [{"namespace": source[0], "name": source[1]}],
        "outputs": [
            {"namespace": target[0], "name": target[1], "facets": {"columnLineage": lineage}}
        ],
    }


def edges(database) -> set[tuple]:
    with database.session() as session:
        return {
            (
                r.target_name,
                r.target_column,
                r.source_name,
                r.source_column,
                r.how,
                r.subtype,
                r.description,
            )
            for r in session.scalars(select(LineageColumnEdge))
        }


def apply(database, *events) -> None:
    for one in events:
        with database.session() as session:
            apply_event(session, one)
            session.commit()


def test_how_comes_from_the_transformation_and_a_renamed_identity_is_a_rename(database):
    apply(
        database,
        event(
            "ingest",
            SRC,
            BRONZE,
            {
                "id": [("id", "identity")],
                "email": [("E-Mail", "rename", "rename")],
                "total": [("amount", "derived", "amount * 2"), ("id", "filter", "id > 0")],
            },
            second=1,
        ),
    )
    assert edges(database) == {
        ("bronze.tx", "id", "tx.csv", "id", "identity", "IDENTITY", None),
        ("bronze.tx", "email", "tx.csv", "E-Mail", "rename", "IDENTITY", "rename"),
        ("bronze.tx", "total", "tx.csv", "amount", "derived", "TRANSFORMATION", "amount * 2"),
        ("bronze.tx", "total", "tx.csv", "id", "filter", "FILTER", "id > 0"),
    }


def test_only_complete_events_carry_column_lineage(database):
    apply(
        database,
        event("ingest", SRC, BRONZE, {"id": [("id", "identity")]}, second=1, event_type="RUNNING"),
    )
    assert edges(database) == set()


def test_the_newest_event_of_a_job_replaces_its_column_edges_in_any_order(tmp_path):
    old = event(
        "silver", SRC, BRONZE, {"a": [("a", "identity")], "b": [("x", "derived", "x+1")]}, second=1
    )
    new = event(
        "silver", SRC, BRONZE, {"a": [("a", "identity")], "c": [("y", "derived", "y")]}, second=2
    )
    expected = {
        ("bronze.tx", "a", "tx.csv", "a", "identity", "IDENTITY", None),
        ("bronze.tx", "c", "tx.csv", "y", "derived", "TRANSFORMATION", "y"),
    }
    events = [old, new]
    for number, order in enumerate(sorted(set(itertools.permutations([0, 1, 0, 1])))):
        url = f"sqlite:///{tmp_path / f'{number}.db'}"
        upgrade_all(url)
        database = Database(url)
        try:
            apply(database, *(events[index] for index in order))
            assert edges(database) == expected, order
        finally:
            database.dispose()


def test_malformed_or_oversized_facets_from_other_producers_are_left_out(database):
    bad = event("spark", SRC, BRONZE, {"ok": [("ok", "identity")]}, second=1)
    fields = bad["outputs"][0]["facets"]["columnLineage"]["fields"]
    fields["not_a_dict"] = "oops"
    fields["no_inputs"] = {"inputFields": "oops"}
    fields["long"] = {"inputFields": [{"namespace": "n", "name": "x", "field": "f" * 300}]}
    fields["odd"] = {
        "inputFields": [
            {
                "namespace": "n",
                "name": "x",
                "field": "f",
                "transformations": ["oops", {"type": "X" * 40}],
            }
        ]
    }
    fields["unnamed"] = {"inputFields": [{"namespace": "n", "field": "f"}, {"name": "x"}]}
    fields["old"] = {
        "inputFields": [{"namespace": "n", "name": "x", "field": "f"}],
        "transformationType": "MASKED",
    }
    apply(database, bad)
    assert edges(database) == {
        ("bronze.tx", "ok", "tx.csv", "ok", "identity", "IDENTITY", None),
        ("bronze.tx", "old", "x", "f", "masked", "MASKED", None),
    }


def test_walking_up_and_down_one_column_across_jobs(database):
    apply(
        database,
        event(
            "ingest",
            SRC,
            BRONZE,
            {"amount": [("amount", "identity")], "id": [("id", "identity")]},
            second=1,
        ),
        event(
            "gold",
            BRONZE,
            GOLD,
            {"total": [("amount", "aggregation", "SUM(amount)"), ("id", "group_by", "groupBy")]},
            second=2,
        ),
    )
    with database.session() as session:
        gold = session.get(LineageDataset, GOLD)
        bronze = session.get(LineageDataset, BRONZE)
        assert columns_of(session, gold) == ["total"]
        assert columns_of(session, bronze) == ["amount", "id"]
        up = column_lineage(session, gold, "total", "upstream", 5)
        assert "downstream" not in up
        assert [
            (e["dataset"], e["column"], e["how"], e["jobId"], e["depth"]) for e in up["upstream"]
        ] == [
            ("lake:bronze.tx", "amount", "aggregation", "gold", 1),
            ("lake:bronze.tx", "id", "group_by", "gold", 1),
            ("landing:tx.csv", "amount", "identity", "ingest", 2),
            ("landing:tx.csv", "id", "identity", "ingest", 2),
        ]
        assert up["upstream"][2]["target"] == {"dataset": "lake:bronze.tx", "column": "amount"}
        assert len(column_lineage(session, gold, "total", "upstream", 1)["upstream"]) == 2
        source = session.get(LineageDataset, SRC)
        down = column_lineage(session, source, "amount", "downstream", 5)["downstream"]
        assert [(e["dataset"], e["column"], e["how"], e["source"]["column"]) for e in down] == [
            ("lake:bronze.tx", "amount", "identity", "amount"),
            ("lake:gold.totals", "total", "aggregation", "amount"),
        ]

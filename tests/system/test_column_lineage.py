"""Column lineage of a real run: two CSV sources, a silver table built from both, a gold table
joining and aggregating it — what GET /api/lineage/columns answers, and that replaying the
run events (twice, in reverse order) changes nothing."""

from __future__ import annotations

import csv
import random

from sqlalchemy import select

from flowforge.app import upgrade_all
from flowforge_lineage.graph.consumer import record_event
from flowforge_lineage.graph.models import LineageColumnEdge
from flowforge_orchestrator.runs.models import RunEvent
from flowforge_shared.db.engine import Database

JOBS = [
    {
        "name": "Ingest core",
        "type": "file-based",
        "sourceConfig": {
            "type": "csv",
            "fileConfig": {
                "filePath": "core.csv",
                "columns": [
                    {"name": "Balance EUR", "rename": "balance", "type": "decimal",
                     "precision": 18, "scale": 2}
                ],
            },
        },
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_core"}},
    },
    {
        "name": "Ingest CRM",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "crm.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_crm"}},
    },
    {
        "name": "Silver customers",
        "type": "gold-analytics",
        "sourceConfig": {"type": "multi-table", "tables": ["bronze_core", "bronze_crm"]},
        "destinationConfig": {
            "silverConfig": {"tableName": "silver_customers", "primaryKey": "customer_id"}
        },
        "transformationConfig": {
            "derivedColumns": [{"name": "name_upper", "expression": "UPPER(full_name)"}]
        },
    },
    {
        "name": "Gold segments",
        "type": "gold-analytics",
        "sourceConfig": {"type": "multi-table", "tables": ["silver_customers"]},
        "destinationConfig": {"goldConfig": {"tableName": "gold_segments"}},
        "transformationConfig": {
            "joins": [{"table": "bronze_crm", "on": "customer_id", "type": "inner"}],
            "filters": ["balance > 0"],
            "groupBy": ["segment"],
            "aggregations": [
                {"column": "balance", "function": "SUM", "alias": "total_balance"},
                {"column": "*", "function": "COUNT", "alias": "customers"},
            ],
        },
    },
]  # fmt: skip


def write_sources(landing) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    with open(landing / "core.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "full_name", "Balance EUR"])
        writer.writerows([[i, f"Customer {i}", f"{i * 10}.50"] for i in range(1, 21)])
    with open(landing / "crm.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "full_name", "segment"])
        writer.writerows([[i, f"Cust {i}", "retail" if i % 3 else "private"] for i in range(1, 16)])


def ids(platform, workflow_id: str, count: int = 6) -> dict[str, str]:
    """Dataset id by label (a lake table's name, a source's file), from the table graph."""
    response = platform.client.get(
        f"/api/workflows/{workflow_id}/lineage", headers=platform.headers
    )
    assert response.status_code == 200, response.text
    found = {}
    for node in response.json()["nodes"]:
        if node["type"] == "source":
            found[next(f for f in ("core.csv", "crm.csv") if node["label"].endswith(f))] = node[
                "id"
            ]
        else:
            found[node["label"]] = node["id"]
    assert len(found) == count, found
    return found


def columns(platform, dataset: str, column: str, **params) -> dict:
    response = platform.client.get(
        "/api/lineage/columns",
        params={"dataset": dataset, "column": column, **params},
        headers=platform.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def upstream(platform, dataset: str, column: str, jobs: dict[str, str]) -> set[tuple]:
    """One step up: (dataset, column, how, job name) of each source column."""
    names = {job_id: name for name, job_id in jobs.items()}
    answer = columns(platform, dataset, column, direction="upstream", depth=1)
    assert "downstream" not in answer
    return {
        (e["dataset"], e["column"], e["how"], names.get(e["jobId"])) for e in answer["upstream"]
    }


def edge_rows(session) -> set[tuple]:
    return {
        tuple(getattr(row, c.key) for c in LineageColumnEdge.__table__.columns)
        for row in session.scalars(select(LineageColumnEdge))
    }


def test_two_sources_a_multi_source_silver_and_a_gold_join_give_this_column_lineage(
    embedded, tmp_path
):
    write_sources(embedded.landing)
    workflow = embedded.create_workflow(JOBS)
    for _ in range(2):  # two runs: the second run's events must replace the first's
        execution = embedded.run(workflow["id"])
        assert execution["status"] == "succeeded", execution
    jobs = {job["name"]: job["jobId"] for job in execution["jobs"]}
    d = ids(embedded, workflow["id"])
    core, crm, b_core, b_crm = d["core.csv"], d["crm.csv"], d["bronze_core"], d["bronze_crm"]
    silver, gold = d["silver_customers"], d["gold_segments"]

    # Bronze: the same-named source column, a renamed one, and audit columns from nowhere.
    assert upstream(embedded, b_core, "customer_id", jobs) == {
        (core, "customer_id", "identity", "Ingest core")
    }
    assert upstream(embedded, b_core, "balance", jobs) == {
        (core, "Balance EUR", "rename", "Ingest core")
    }
    assert upstream(embedded, b_crm, "segment", jobs) == {
        (crm, "segment", "identity", "Ingest CRM")
    }
    assert upstream(embedded, b_core, "_ingested_at", jobs) == set()

    # Silver: each column from every input holding it, plus what picks its rows: the key
    # (combined, deduplicated, null keys rejected, merged on) and the dedupe order.
    job = "Silver customers"
    rows_picked = {
        (table, column, how, job)
        for table in (b_core, b_crm)
        for column, how in (
            ("customer_id", "group_by"),
            ("customer_id", "filter"),
            ("customer_id", "join"),
            ("_ingested_at", "sort"),
            ("_source_row", "sort"),
        )
    }
    direct = {
        "customer_id": {(b_core, "customer_id", "identity"), (b_crm, "customer_id", "identity")},
        "full_name": {(b_core, "full_name", "identity"), (b_crm, "full_name", "identity")},
        "balance": {(b_core, "balance", "identity")},
        "segment": {(b_crm, "segment", "identity")},
        "name_upper": {(b_core, "full_name", "derived"), (b_crm, "full_name", "derived")},
        "_ingested_at": {(b_core, "_ingested_at", "identity"), (b_crm, "_ingested_at", "identity")},
        "_source": {(b_core, "_source", "identity"), (b_crm, "_source", "identity")},
    }  # fmt: skip
    assert set(embedded.read("silver", "silver_customers").columns) == set(direct)
    for column, sources in direct.items():
        expected = {(*source, job) for source in sources} | rows_picked
        assert upstream(embedded, silver, column, jobs) == expected, column
    derived = columns(embedded, silver, "name_upper", direction="upstream", depth=1)
    assert {e["description"] for e in derived["upstream"] if e["how"] == "derived"} == {
        "UPPER(full_name)"
    }

    # Gold: joined with bronze_crm on the key, filtered on balance, grouped by segment.
    job = "Gold segments"
    rows_picked = {
        (silver, "customer_id", "join", job),
        (b_crm, "customer_id", "join", job),
        (silver, "balance", "filter", job),
        (silver, "segment", "group_by", job),
    }
    assert set(embedded.read("gold", "gold_segments").columns) == {
        "segment",
        "total_balance",
        "customers",
    }
    assert upstream(embedded, gold, "segment", jobs) == rows_picked | {
        (silver, "segment", "identity", job)
    }
    assert upstream(embedded, gold, "total_balance", jobs) == rows_picked | {
        (silver, "balance", "aggregation", job)
    }
    assert upstream(embedded, gold, "customers", jobs) == rows_picked

    # Impact analysis: what a change to the core system's balance column reaches.
    impact = columns(embedded, core, "Balance EUR", direction="downstream", depth=10)
    assert "upstream" not in impact
    assert {(e["dataset"], e["column"], e["how"]) for e in impact["downstream"]} == {
        (b_core, "balance", "rename"),
        (silver, "balance", "identity"),
        (gold, "total_balance", "aggregation"),
        (gold, "total_balance", "filter"),
        (gold, "segment", "filter"),
        (gold, "customers", "filter"),
    }
    # The CRM key decides the rows of every silver and gold column.
    reached = columns(embedded, crm, "customer_id", direction="downstream", depth=10)
    assert {(e["dataset"], e["column"]) for e in reached["downstream"]} == {
        (b_crm, "customer_id")
    } | {(silver, column) for column in direct} | {
        (gold, column) for column in ("segment", "total_balance", "customers")
    }
    both = columns(embedded, silver, "balance")
    assert both["dataset"] == silver and both["column"] == "balance"
    assert {e["dataset"] for e in both["upstream"]} == {b_core, b_crm, core, crm}
    assert {e["column"] for e in both["downstream"]} == {"segment", "total_balance", "customers"}

    # Replays change nothing; the events in reverse order give the same column edges.
    database = embedded.app.state.database
    with database.session() as session:
        before = edge_rows(session)
        events = list(session.scalars(select(RunEvent.payload).order_by(RunEvent.id)))
    assert len(before) > 50
    for _ in range(2):
        assert [record_event(database, event) for event in events] == [False] * len(events)
    with database.session() as session:
        assert edge_rows(session) == before
    shuffled = list(events)
    random.Random(14).shuffle(shuffled)
    for name, order in (("reversed", events[::-1]), ("shuffled", shuffled)):
        url = f"sqlite:///{tmp_path / f'{name}-columns.db'}"
        upgrade_all(url)
        fresh = Database(url)
        try:
            assert all(record_event(fresh, event) for event in order)
            assert all(not record_event(fresh, event) for event in order)
            with fresh.session() as session:
                assert edge_rows(session) == before, name
        finally:
            fresh.dispose()


def test_unknown_datasets_columns_and_bad_parameters_are_4xx_with_a_message(embedded):
    write_sources(embedded.landing)
    workflow = embedded.create_workflow(JOBS[:2])
    assert embedded.run(workflow["id"])["status"] == "succeeded"
    b_core = ids_of_bronze(embedded, workflow["id"])

    def get(**params):
        return embedded.client.get("/api/lineage/columns", params=params, headers=embedded.headers)

    missing = get(dataset="nowhere:gold.nothing", column="x")
    assert missing.status_code == 404
    assert "no dataset nowhere:gold.nothing" in missing.json()["detail"]
    unknown = get(dataset=b_core, column="nope")
    assert unknown.status_code == 404
    assert "has no column 'nope'" in unknown.json()["detail"]
    assert "balance" in unknown.json()["detail"]
    assert get(dataset=b_core, column="balance", direction="sideways").status_code == 422
    assert get(dataset=b_core, column="balance", depth=0).status_code == 422
    assert get(dataset=b_core).status_code == 422
    assert get(dataset=b_core, column="balance").status_code == 200


def ids_of_bronze(platform, workflow_id: str) -> str:
    response = platform.client.get(
        f"/api/workflows/{workflow_id}/lineage", headers=platform.headers
    )
    return next(
        n["id"]
        for n in response.json()["nodes"]
        if n["type"] == "bronze" and n["label"] == "bronze_core"
    )


def test_a_column_lineage_failure_never_fails_the_run(embedded, monkeypatch, caplog):
    def broken(*_args):
        raise RuntimeError("lineage bug")

    monkeypatch.setattr("flowforge_transform.runner.column_lineage", broken)
    write_sources(embedded.landing)
    workflow = embedded.create_workflow(JOBS[:3])
    execution = embedded.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    assert "column lineage of silver" in caplog.text and "lineage bug" in caplog.text
    d = ids(embedded, workflow["id"], count=5)
    assert upstream(embedded, d["bronze_core"], "customer_id", {}) == {
        (d["core.csv"], "customer_id", "identity", None)
    }
    # The column is known (the table's schema names it) and has no lineage.
    silver = embedded.client.get(
        "/api/lineage/columns",
        params={"dataset": d["silver_customers"], "column": "customer_id"},
        headers=embedded.headers,
    )
    assert silver.status_code == 200, silver.text
    assert (silver.json()["upstream"], silver.json()["downstream"]) == ([], [])

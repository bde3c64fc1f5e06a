"""The lineage graph of the three-layer workflow, built in-process from the run events the
orchestrator passes on: its nodes and edges, exactly-once application and order freedom."""

from __future__ import annotations

import logging
import random
import time

import pytest
from sqlalchemy import select

from flowforge.app import upgrade_all
from flowforge_lineage.graph.consumer import record_event
from flowforge_lineage.graph.query import workflow_graph
from flowforge_orchestrator.runs.models import RunEvent
from flowforge_shared.contracts.tasks import LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database
from tests.system.conftest import workflow_jobs, write_transactions
from tests.system.test_celery_run import start_cluster


def lake_id(platform, layer: str, table: str) -> str:
    """A lake table's node id: namespace ``file`` and the table's absolute path."""
    return f"file:{platform.lake_root}/{layer}/{table}"


def ids(platform) -> tuple[str, str, str, str]:
    """The node ids of the three-layer workflow's file, bronze, silver and gold tables."""
    return (
        f"file:{platform.landing}/tx.csv",
        lake_id(platform, "bronze", "bronze_tx"),
        lake_id(platform, "silver", "silver_tx"),
        lake_id(platform, "gold", "gold_customer_totals"),
    )


def lineage_of(platform, workflow_id: str) -> dict:
    response = platform.client.get(
        f"/api/workflows/{workflow_id}/lineage", headers=platform.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def recorded_events(platform) -> list[dict]:
    with platform.app.state.database.session() as session:
        return list(session.scalars(select(RunEvent.payload).order_by(RunEvent.id)))


def test_workflow_lineage_is_the_three_layer_graph_with_the_tables_row_counts(embedded):
    write_transactions(embedded.landing / "tx.csv", 50)
    workflow = embedded.create_workflow(workflow_jobs())
    execution = embedded.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    SOURCE, BRONZE, SILVER, GOLD = ids(embedded)

    graph = lineage_of(embedded, workflow["id"])
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert set(nodes) == {SOURCE, BRONZE, SILVER, GOLD}
    assert {i: n["type"] for i, n in nodes.items()} == {
        SOURCE: "source",
        BRONZE: "bronze",
        SILVER: "silver",
        GOLD: "gold",
    }
    assert nodes[GOLD]["label"] == "gold_customer_totals" and nodes[SOURCE]["label"] == "tx.csv"
    assert nodes[SOURCE]["rowCount"] == 50
    for node_id, layer, table in (
        (BRONZE, "bronze", "bronze_tx"),
        (SILVER, "silver", "silver_tx"),
        (GOLD, "gold", "gold_customer_totals"),
    ):
        assert nodes[node_id]["rowCount"] == embedded.read(layer, table).height, node_id
    assert all(n["status"] == "succeeded" and n["lastUpdated"] for n in nodes.values())
    jobs = {job["name"]: job["jobId"] for job in execution["jobs"]}
    assert sorted(
        (e["source"], e["target"], e["jobId"], e["jobName"]) for e in graph["edges"]
    ) == sorted(
        [
            (SOURCE, BRONZE, jobs["Ingest transactions"], "Ingest transactions"),
            (BRONZE, SILVER, jobs["Silver transactions"], "Silver transactions"),
            (SILVER, GOLD, jobs["Gold customer totals"], "Gold customer totals"),
        ]
    )

    # Across workflows, around one dataset.
    def around(**params) -> dict:
        response = embedded.client.get("/api/lineage", params=params, headers=embedded.headers)
        assert response.status_code == 200, response.text
        return response.json()

    upstream = around(dataset=SILVER, direction="upstream", depth=1)
    assert upstream["root"] == SILVER
    assert {n["id"] for n in upstream["nodes"]} == {BRONZE, SILVER}
    assert {n["id"] for n in around(dataset=SILVER, direction="upstream")["nodes"]} == {
        SOURCE,
        BRONZE,
        SILVER,
    }
    downstream = around(dataset=BRONZE, direction="downstream", depth=5)
    assert {n["id"] for n in downstream["nodes"]} == {BRONZE, SILVER, GOLD}
    both = around(dataset=SILVER)
    assert {n["id"] for n in both["nodes"]} == set(nodes) and len(both["edges"]) == 3
    missing = embedded.client.get(
        "/api/lineage", params={"dataset": "file:gold.nope"}, headers=embedded.headers
    )
    assert missing.status_code == 404
    assert lineage_of(embedded, "no-such-workflow") == {"nodes": [], "edges": []}


def test_replaying_events_changes_nothing_and_reverse_order_gives_the_same_graph(
    embedded, tmp_path
):
    write_transactions(embedded.landing / "tx.csv", 30)
    workflow = embedded.create_workflow(workflow_jobs())
    assert embedded.run(workflow["id"])["status"] == "succeeded"
    assert embedded.run(workflow["id"])["status"] == "succeeded"  # a second version each
    before = lineage_of(embedded, workflow["id"])
    events = recorded_events(embedded)
    assert len(events) >= 18 and {e["eventType"] for e in events} >= {"START", "COMPLETE"}

    database = embedded.app.state.database
    assert [record_event(database, event) for event in events] == [False] * len(events)
    assert lineage_of(embedded, workflow["id"]) == before

    shuffled = list(events)
    random.Random(14).shuffle(shuffled)
    for name, order in (("reversed", events[::-1]), ("shuffled", shuffled)):
        url = f"sqlite:///{tmp_path / f'{name}-lineage.db'}"
        upgrade_all(url)
        fresh = Database(url)
        try:
            assert all(record_event(fresh, event) for event in order)
            with fresh.session() as session:
                assert workflow_graph(session, workflow["id"]) == before, name
        finally:
            fresh.dispose()


def test_a_lineage_service_that_fails_never_fails_the_run(embedded, caplog):
    def broken(_event):
        raise RuntimeError("lineage database is gone")

    embedded.app.state.bus.handle(LINEAGE_RECORD_EVENT, broken)
    write_transactions(embedded.landing / "tx.csv", 20)
    workflow = embedded.create_workflow(workflow_jobs())
    with caplog.at_level(logging.ERROR, logger="flowforge.orchestrator"):
        execution = embedded.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    assert "did not reach the lineage service" in caplog.text
    assert lineage_of(embedded, workflow["id"]) == {"nodes": [], "edges": []}


@pytest.mark.redis
def test_a_lineage_worker_started_after_the_run_catches_up(celery_platform):
    """Served apart, the events worker passes the events to the lineage queue; a lineage
    worker that was not running finds them there and builds the same graph."""
    start_cluster(celery_platform)
    write_transactions(celery_platform.landing / "tx.csv", 200)
    workflow = celery_platform.create_workflow(workflow_jobs())
    execution = celery_platform.run(workflow["id"])
    assert execution["status"] == "succeeded", execution
    assert lineage_of(celery_platform, workflow["id"]) == {"nodes": [], "edges": []}

    SOURCE, BRONZE, SILVER, GOLD = ids(celery_platform)
    celery_platform.cluster.start_worker("lineage")
    deadline = time.monotonic() + 60
    while True:
        graph = lineage_of(celery_platform, workflow["id"])
        if len(graph["edges"]) == 3 and all(
            node["status"] == "succeeded" for node in graph["nodes"]
        ):
            break
        assert time.monotonic() < deadline, graph
        time.sleep(0.3)
    rows = {node["id"]: node["rowCount"] for node in graph["nodes"]}
    assert rows == {
        SOURCE: 200,
        BRONZE: celery_platform.read("bronze", "bronze_tx").height,
        SILVER: celery_platform.read("silver", "silver_tx").height,
        GOLD: celery_platform.read("gold", "gold_customer_totals").height,
    }


def test_a_table_of_one_workflow_read_by_another_is_one_graph(embedded):
    write_transactions(embedded.landing / "tx.csv", 40)
    first = embedded.create_workflow(workflow_jobs())
    assert embedded.run(first["id"])["status"] == "succeeded"
    second = embedded.create_workflow(
        [
            {
                "name": "Customer count",
                "type": "gold-analytics",
                "sourceConfig": {"type": "multi-table", "tables": ["gold_customer_totals"]},
                "destinationConfig": {"goldConfig": {"tableName": "gold_customer_count"}},
                "transformationConfig": {
                    "aggregations": [
                        {"column": "customer_id", "function": "COUNT", "alias": "customers"}
                    ]
                },
            }
        ]
    )
    assert embedded.run(second["id"])["status"] == "succeeded"
    SOURCE, BRONZE, SILVER, GOLD = ids(embedded)
    count = lake_id(embedded, "gold", "gold_customer_count")

    graph = lineage_of(embedded, second["id"])
    assert {n["id"] for n in graph["nodes"]} == {GOLD, count}
    assert [(e["source"], e["target"]) for e in graph["edges"]] == [(GOLD, count)]
    assert {n["id"]: n["workflowId"] for n in graph["nodes"]} == {
        GOLD: first["id"],
        count: second["id"],
    }
    response = embedded.client.get(
        "/api/lineage",
        params={"dataset": count, "direction": "upstream", "depth": 10},
        headers=embedded.headers,
    )
    assert {n["id"] for n in response.json()["nodes"]} == {SOURCE, BRONZE, SILVER, GOLD, count}
    response = embedded.client.get(
        "/api/lineage",
        params={"dataset": SOURCE, "direction": "downstream"},
        headers=embedded.headers,
    )
    assert {n["id"] for n in response.json()["nodes"]} == {SOURCE, BRONZE, SILVER, GOLD, count}

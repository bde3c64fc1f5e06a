"""The lineage graph as a user reads it: what a node and an edge carry, finding a dataset by
its id or its alias, and the graph around a dataset — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from flowforge_lineage.graph import neighbourhood, query
from flowforge_shared.errors import Conflict, NotFound

SCHEMA = [
    {"name": "customer_id", "type": "bigint", "nullable": False},
    {"name": "name", "type": "string", "nullable": True},
]


def lake_chain(rows) -> dict[str, str]:
    """A CSV source -> bronze -> silver -> gold chain named by storage location, with
    aliases, as the write side keeps them after migration 0010."""
    for job_id, status, seconds in (
        ("ingest", "succeeded", 1.5),
        ("silver", "failed", 0.25),
        ("gold", "running", None),
    ):
        rows.job(f"{rows.tag}-{job_id}", status=status, seconds=seconds)
    ingest, silver, gold = (f"{rows.tag}-{j}" for j in ("ingest", "silver", "gold"))
    lake = "/data/lake"
    ids = {
        "source": rows.dataset("/data/landing/customers.csv", "source", rows=500),
        "bronze": rows.dataset(
            f"{lake}/bronze/customers",
            "bronze",
            alias=f"bronze.customers_{rows.tag}",
            rows=500,
            version=3,
            writer=ingest,
            schema=SCHEMA,
        ),
        "silver": rows.dataset(
            f"{lake}/silver/customers",
            "silver",
            alias=f"silver.customers_{rows.tag}",
            label="Customer master",
            rows=480,
            version=7,
            writer=silver,
        ),
        "gold": rows.dataset(
            f"{lake}/gold/customer_360",
            "gold",
            alias=f"gold.customer_360_{rows.tag}",
            rows=470,
            writer=gold,
        ),
    }
    rows.edge(ids["source"], ids["bronze"], ingest)
    rows.edge(ids["bronze"], ids["silver"], silver)
    rows.edge(ids["silver"], ids["gold"], gold)
    return ids


def test_workflow_graph_nodes_carry_layer_label_rows_status_duration_and_schema(database, rows):
    ids = lake_chain(rows)
    with database.session() as session:
        graph = query.workflow_graph(session, rows.workflow_id)
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert set(nodes) == set(ids.values())
    bronze = nodes[ids["bronze"]]
    assert bronze == {
        "id": ids["bronze"],
        "type": "bronze",
        "label": f"customers_{rows.tag}",  # its alias without the layer
        "alias": f"bronze.customers_{rows.tag}",
        "namespace": rows.ns,
        "name": "/data/lake/bronze/customers",
        "rowCount": 500,
        "lastUpdated": "2026-12-01T08:00:00+00:00",
        "status": "succeeded",
        "durationMs": 1500,
        "schema": SCHEMA,
        "jobId": f"{rows.tag}-ingest",
        "workflowId": rows.workflow_id,
        "version": 3,
    }
    silver, gold, source = nodes[ids["silver"]], nodes[ids["gold"]], nodes[ids["source"]]
    assert (silver["label"], silver["status"], silver["durationMs"]) == (
        "Customer master",
        "failed",
        250,
    )
    assert silver["schema"] is None
    # A run still going has no duration yet.
    assert (gold["status"], gold["durationMs"]) == ("running", None)
    # A source's run is the one of the newest job that read it.
    assert (source["type"], source["label"], source["status"], source["durationMs"]) == (
        "source",
        "customers.csv",
        "succeeded",
        1500,
    )
    assert source["jobId"] == f"{rows.tag}-ingest"
    assert {(e["source"], e["target"], e["jobId"], e["status"]) for e in graph["edges"]} == {
        (ids["source"], ids["bronze"], f"{rows.tag}-ingest", "succeeded"),
        (ids["bronze"], ids["silver"], f"{rows.tag}-silver", "failed"),
        (ids["silver"], ids["gold"], f"{rows.tag}-gold", "running"),
    }
    edge = graph["edges"][0]
    assert set(edge) == {"id", "source", "target", "jobId", "jobName", "workflowId", "status"}
    assert len({e["id"] for e in graph["edges"]}) == 3


def test_a_source_shows_the_newest_of_the_jobs_that_read_it(database, rows):
    older = rows.job(f"{rows.tag}-older", status="succeeded", seconds=4)
    newer = rows.job(f"{rows.tag}-newer", status="failed", seconds=0.5)  # a later status key
    source = rows.dataset("crm.csv", "source", rows=10, status="failed")
    first = rows.dataset("bronze.a", "bronze", writer=older)
    second = rows.dataset("bronze.b", "bronze", writer=newer)
    rows.edge(source, first, older)
    rows.edge(source, second, newer)
    with database.session() as session:
        graph = query.workflow_graph(session, rows.workflow_id)
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert (nodes[source]["status"], nodes[source]["durationMs"], nodes[source]["jobId"]) == (
        "failed",
        500,
        newer,
    )
    # Lake tables named the old way ("bronze.a") show the table's name.
    assert nodes[first]["label"] == "a" and nodes[first]["status"] == "succeeded"


def test_find_dataset_by_id_with_colons_in_the_namespace(database, rows):
    table = rows.dataset("bank.public.accounts", "source", namespace=rows.pg)
    also = rows.dataset("5432:bank.public.accounts", "source", namespace=rows.pg.rsplit(":", 1)[0])
    with database.session() as session:
        assert query.find_dataset(session, table).node_id == table
        assert query.find_dataset(session, also).node_id == also


def test_find_dataset_by_alias_and_its_errors(database, rows):
    ids = lake_chain(rows)
    alias = f"silver.customers_{rows.tag}"
    with database.session() as session:
        assert query.find_dataset(session, alias).node_id == ids["silver"]
        assert query.find_dataset(session, f"flowforge:{alias}").node_id == ids["silver"]
        # The id lake tables had before they were named by location: namespace and alias.
        assert query.find_dataset(session, f"{rows.ns}:{alias}").node_id == ids["silver"]
        with pytest.raises(NotFound):
            query.find_dataset(session, f"{rows.s3}:{alias}")
        assert query.find_dataset(session, ids["gold"]).node_id == ids["gold"]
        with pytest.raises(NotFound, match="no dataset silver.nope"):
            query.find_dataset(session, "silver.nope")
    other = rows.dataset("silver/customers", "silver", namespace=rows.s3, alias=alias)
    with database.session() as session, pytest.raises(Conflict) as raised:
        query.find_dataset(session, alias)
    assert ids["silver"] in raised.value.message and other in raised.value.message
    assert "2 lake tables" in raised.value.message


def diamond_web(rows, width: int) -> tuple[str, list[str], list[str], list[str]]:
    """A hub silver table fed by ``width`` bronze tables (each from its own source) and
    feeding ``width`` gold tables, each feeding one more gold table."""
    hub_job = rows.job(f"{rows.tag}-hub")
    hub = rows.dataset("silver.hub", "silver", writer=hub_job)
    sources, bronzes, golds = [], [], []
    for index in range(width):
        ingest = rows.job(f"{rows.tag}-ingest-{index}")
        source = rows.dataset(f"src_{index}.csv", "source")
        bronze = rows.dataset(f"bronze.b{index}", "bronze", writer=ingest)
        rows.edge(source, bronze, ingest)
        rows.edge(bronze, hub, hub_job)
        gold_job = rows.job(f"{rows.tag}-gold-{index}")
        gold = rows.dataset(f"gold.g{index}", "gold", writer=gold_job)
        rows.edge(hub, gold, gold_job)
        report_job = rows.job(f"{rows.tag}-report-{index}")
        report = rows.dataset(f"gold.r{index}", "gold", writer=report_job)
        rows.edge(gold, report, report_job)
        sources.append(source)
        bronzes.append(bronze)
        golds.extend([gold, report])
    return hub, sources, bronzes, golds


def test_neighbourhood_walks_levels_in_each_direction(database, rows, monkeypatch):
    # Chunks of two keys: a frontier of six datasets takes three statements per level.
    monkeypatch.setattr(query, "CHUNK", 2)
    hub, sources, bronzes, golds = diamond_web(rows, 6)
    with database.session() as session:
        start = query.find_dataset(session, hub)
        up1 = neighbourhood.neighbourhood(session, start, "upstream", 1)
        up = neighbourhood.neighbourhood(session, start, "upstream", 5)
        down1 = neighbourhood.neighbourhood(session, start, "downstream", 1)
        both = neighbourhood.neighbourhood(session, start, "both", 5)
        from_source = neighbourhood.neighbourhood(
            session, query.find_dataset(session, sources[0]), "both", 3
        )
    assert up1["root"] == hub
    assert {n["id"] for n in up1["nodes"]} == {hub, *bronzes}
    assert {(e["source"], e["target"]) for e in up1["edges"]} == {(b, hub) for b in bronzes}
    assert {n["id"] for n in up["nodes"]} == {hub, *bronzes, *sources}
    assert {n["id"] for n in down1["nodes"]} == {hub, *golds[::2]}
    assert {n["id"] for n in both["nodes"]} == {hub, *bronzes, *sources, *golds}
    assert len(both["edges"]) == 6 * 4
    # Three edges down from a source: its bronze, the hub, the hub's gold tables.
    assert {n["id"] for n in from_source["nodes"]} == {
        sources[0],
        bronzes[0],
        hub,
        *golds[::2],
    }


def test_a_walk_costs_a_few_statements_per_level_whatever_the_width(database, rows):
    hub, _, _, _ = diamond_web(rows, 40)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with database.session() as session:
        start = query.find_dataset(session, hub)
        event.listen(database.engine, "before_cursor_execute", count)
        try:
            graph = neighbourhood.neighbourhood(session, start, "both", 5)
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
    assert len(graph["nodes"]) == 1 + 40 * 4
    # Per direction at most depth (+1 empty) level statements; then datasets, the sources'
    # readers, jobs and runs (twice: readers' and writers'): never one per node.
    assert len(statements) <= 2 * 5 + 6, statements


def test_an_unknown_workflow_has_an_empty_graph(database):
    with database.session() as session:
        assert query.workflow_graph(session, "no-such-workflow") == {"nodes": [], "edges": []}


def test_a_walk_stops_at_the_level_that_passes_the_limit(database, rows):
    hub, _, bronzes, golds = diamond_web(rows, 40)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with database.session() as session:
        start = query.find_dataset(session, hub)
        event.listen(database.engine, "before_cursor_execute", count)
        try:
            graph = neighbourhood.neighbourhood(session, start, "both", 5, limit=20)
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
    # Level 1 finds 80 datasets (40 bronze up, 40 gold down): the walk goes no deeper.
    assert len(graph["nodes"]) == 20
    assert (graph["truncated"], graph["omittedNodes"], graph["completeDepth"]) == (True, 61, 0)
    assert [n["id"] for n in graph["nodes"]] == [hub, *sorted([*bronzes, *golds[::2]])[:19]]
    # One level statement per direction, then datasets, readers (none: no source kept) and
    # jobs with their last runs.
    assert len(statements) <= 2 + 3, statements

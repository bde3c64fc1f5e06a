"""The lineage API of the embedded app (one process, SQLite), on rows written directly."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.lineage.conftest import GraphRows
from tests.lineage.test_query import lake_chain


@pytest.fixture
def platform(tmp_path):
    from flowforge.app import create_app
    from tests.conftest import ADMIN_TOKEN, make_settings

    app = create_app(make_settings(tmp_path))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client, GraphRows(app.state.database)
    app.state.database.dispose()


def test_lineage_around_an_alias_and_the_workflow_graph(platform):
    client, rows = platform
    ids = lake_chain(rows)
    response = client.get(
        "/api/lineage",
        params={"dataset": f"silver.customers_{rows.tag}", "direction": "upstream"},
    )
    assert response.status_code == 200, response.text
    graph = response.json()
    assert graph["root"] == ids["silver"]
    assert {n["id"] for n in graph["nodes"]} == {ids["source"], ids["bronze"], ids["silver"]}
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {
        (ids["source"], ids["bronze"]),
        (ids["bronze"], ids["silver"]),
    }
    silver = next(n for n in graph["nodes"] if n["id"] == ids["silver"])
    assert (silver["label"], silver["status"], silver["durationMs"]) == (
        "Customer master",
        "failed",
        250,
    )

    workflow = client.get(f"/api/workflows/{rows.workflow_id}/lineage").json()
    assert set(workflow) == {"nodes", "edges"}
    assert {n["id"] for n in workflow["nodes"]} == set(ids.values())
    node_ids = {n["id"] for n in workflow["nodes"]}
    assert all(e["source"] in node_ids and e["target"] in node_ids for e in workflow["edges"])


def test_an_alias_of_two_lakes_is_a_409_naming_both_and_unknown_is_a_404(platform):
    client, rows = platform
    first = rows.dataset("/lake/silver/customers", "silver", alias="silver.customers")
    second = rows.dataset("silver/customers", "silver", namespace=rows.s3, alias="silver.customers")
    response = client.get("/api/lineage", params={"dataset": "flowforge:silver.customers"})
    assert response.status_code == 409
    assert first in response.json()["detail"] and second in response.json()["detail"]
    by_id = client.get("/api/lineage", params={"dataset": second})
    assert by_id.status_code == 200 and by_id.json()["root"] == second
    missing = client.get("/api/lineage", params={"dataset": "gold.nope"})
    assert missing.status_code == 404
    assert "no dataset gold.nope" in missing.json()["detail"]


def reader_hub(rows: GraphRows, readers: int) -> tuple[str, list[str], list[str]]:
    """A reference table read by ``readers`` jobs, each writing a silver table that feeds a
    gold table: the shape of a dataset whose neighbourhood is most of the graph."""
    hub = rows.dataset("main.currencies", "source", namespace=rows.pg)
    silvers, golds = [], []
    for index in range(readers):
        job = rows.job(f"{rows.tag}-silver-{index:02d}")
        silver = rows.dataset(f"/lake/silver/s{index:02d}", "silver", writer=job)
        rows.edge(hub, silver, job)
        gold_job = rows.job(f"{rows.tag}-gold-{index:02d}")
        gold = rows.dataset(f"/lake/gold/g{index:02d}", "gold", writer=gold_job)
        rows.edge(silver, gold, gold_job)
        silvers.append(silver)
        golds.append(gold)
    return hub, silvers, golds


def ask(client, dataset: str, **params):
    response = client.get("/api/lineage", params={"dataset": dataset, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_hub_larger_than_the_limit_answers_the_nearest_limit_nodes(platform):
    client, rows = platform
    hub, silvers, golds = reader_hub(rows, 30)

    graph = ask(client, hub, limit=10)
    ids = [node["id"] for node in graph["nodes"]]
    assert len(ids) == 10
    assert (graph["truncated"], graph["limit"]) == (True, 10)
    # Nearest first: the hub, then the first nine of its readers' tables by id.
    assert ids == [hub, *sorted(silvers)[:9]]
    assert [node["depth"] for node in graph["nodes"]] == [0] + [1] * 9
    # Found at depth 1 and left out: 21; the walk went no deeper (at least that many more).
    assert graph["omittedNodes"] == 21
    assert graph["completeDepth"] == 0
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {(hub, s) for s in ids[1:]}

    # Cut inside depth 2: all 30 silver tables, then the first four gold tables by id.
    graph = ask(client, hub, limit=35, direction="downstream")
    ids = [node["id"] for node in graph["nodes"]]
    assert ids == [hub, *sorted(silvers), *sorted(golds)[:4]]
    depths = [node["depth"] for node in graph["nodes"]]
    assert depths == sorted(depths)
    assert (graph["truncated"], graph["omittedNodes"], graph["completeDepth"]) == (True, 26, 1)
    returned = set(ids)
    assert all(e["source"] in returned and e["target"] in returned for e in graph["edges"])
    assert len(graph["edges"]) == 30 + 4


def test_below_the_limit_the_whole_neighbourhood_is_answered(platform):
    client, rows = platform
    hub, silvers, golds = reader_hub(rows, 12)
    default = ask(client, hub)  # limit 500 by default
    exact = ask(client, hub, limit=25)  # exactly the 25 datasets there are
    for graph in (default, exact):
        assert {node["id"] for node in graph["nodes"]} == {hub, *silvers, *golds}
        assert len(graph["edges"]) == 24
        assert graph["truncated"] is False
        assert (graph["omittedNodes"], graph["completeDepth"]) == (0, 5)
    assert default["limit"] == 500 and exact["limit"] == 25
    assert default["nodes"] == exact["nodes"] and default["edges"] == exact["edges"]


def test_a_limit_or_depth_out_of_range_is_a_422_naming_it(platform):
    client, rows = platform
    hub, _, _ = reader_hub(rows, 1)
    for params, words in (
        ({"limit": 0}, "greater than or equal to 1"),
        ({"limit": 10_001}, "less than or equal to 10000"),
        ({"limit": "many"}, "valid integer"),
        ({"depth": 21}, "less than or equal to 20"),
    ):
        response = client.get("/api/lineage", params={"dataset": hub, **params})
        assert response.status_code == 422, (params, response.text)
        (problem,) = response.json()["detail"]
        assert problem["loc"] == ["query", next(iter(params))]
        assert words in problem["msg"]


def test_the_openapi_document_says_the_answer_is_bounded(platform):
    client, _ = platform
    spec = client.get("/api/openapi.json").json()
    operation = spec["paths"]["/api/lineage"]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert limit["schema"]["default"] == 500 and limit["schema"]["maximum"] == 10_000
    assert "truncated" in limit["description"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    model = spec["components"]["schemas"][answer["$ref"].rsplit("/", 1)[-1]]
    assert {"truncated", "limit", "omittedNodes", "completeDepth"} <= set(model["properties"])

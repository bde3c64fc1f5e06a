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

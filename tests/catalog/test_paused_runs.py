"""A manual run of a paused workflow is refused (409) unless forced with ``?force=true``,
which is audited; an active workflow runs as before (over real HTTP)."""

from __future__ import annotations

import pytest

from tests.tiny_platform import HEADERS, make_workflow, served_tiny, wait_ended


@pytest.fixture
def client(tmp_path):
    with served_tiny(tmp_path, scheduler_embedded=False) as (_app, http):
        yield http


def executions(client, workflow_id: str) -> list[dict]:
    response = client.get("/api/executions", params={"workflowId": workflow_id}, headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_paused_workflow_runs_only_when_forced_and_the_force_is_audited(client):
    workflow_id = make_workflow(client)
    url = f"/api/workflows/{workflow_id}"
    assert client.post(f"{url}/pause", headers=HEADERS).status_code == 200
    refused = client.post(f"{url}/run", headers=HEADERS)
    assert refused.status_code == 409, refused.text
    assert "paused" in refused.json()["detail"] and "force=true" in refused.json()["detail"]
    assert client.post(f"{url}/run?force=false", headers=HEADERS).status_code == 409
    assert client.post(f"{url}/run?force=maybe", headers=HEADERS).status_code == 422
    assert executions(client, workflow_id) == []

    forced = client.post(f"{url}/run?force=true", headers=HEADERS)
    assert forced.status_code == 202, forced.text
    execution_id = forced.json()["executionId"]
    assert wait_ended(client, execution_id)["status"] == "succeeded"
    audit = client.get(
        "/api/audit", params={"entityType": "workflow", "entityId": workflow_id}, headers=HEADERS
    )
    assert audit.status_code == 200, audit.text
    [entry] = [e for e in audit.json()["data"] if e["action"] == "workflow.run_forced"]
    assert entry["diff"]["after"]["executionId"] == execution_id


def test_an_active_workflow_runs_without_force_and_force_changes_nothing(client):
    workflow_id = make_workflow(client)
    started = client.post(f"/api/workflows/{workflow_id}/run", headers=HEADERS)
    assert started.status_code == 202, started.text
    wait_ended(client, started.json()["executionId"])
    forced = client.post(f"/api/workflows/{workflow_id}/run?force=true", headers=HEADERS)
    assert forced.status_code == 202, forced.text
    wait_ended(client, forced.json()["executionId"])
    audit = client.get(
        "/api/audit", params={"entityType": "workflow", "entityId": workflow_id}, headers=HEADERS
    ).json()["data"]
    assert not [e for e in audit if e["action"] == "workflow.run_forced"]
    assert client.post("/api/workflows/not-a-workflow/run", headers=HEADERS).status_code == 404


def test_latest_runs_of_a_page_of_workflows(client):
    """The workflow list's "last run": per workflow its newest execution, one request for the
    page; a workflow never run is left out (issue 16)."""
    ran, never = make_workflow(client), make_workflow(client)
    ids = []
    for _ in range(2):
        started = client.post(f"/api/workflows/{ran}/run", headers=HEADERS)
        assert started.status_code == 202, started.text
        ids.append(started.json()["executionId"])
        wait_ended(client, ids[-1])
    answer = client.get(
        "/api/executions/latest", params={"workflowId": [ran, never]}, headers=HEADERS
    )
    assert answer.status_code == 200, answer.text
    [row] = answer.json()["data"]
    newest = executions(client, ran)[0]
    assert (row["workflowId"], row["executionId"]) == (ran, ids[-1]) == (ran, newest["id"])
    assert row["status"] == newest["status"] == "succeeded"
    assert row["finishedAt"] is not None
    assert client.get("/api/executions/latest", headers=HEADERS).status_code == 422
    # The route does not shadow an execution's own page.
    assert client.get(f"/api/executions/{ids[0]}", headers=HEADERS).json()["id"] == ids[0]

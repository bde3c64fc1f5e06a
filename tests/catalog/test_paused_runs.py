"""A manual run of a paused workflow is refused (409) unless forced with ``?force=true``,
which is audited; an active workflow runs as before (over real HTTP)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from flowforge.app import create_app
from tests.conftest import ADMIN_TOKEN, make_settings, served

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def client(tmp_path):
    settings = make_settings(tmp_path, scheduler_embedded=False)
    landing = Path(settings.landing_root) / "tiny"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "t.csv").write_text("id,name\n1,a\n2,b\n")
    app = create_app(settings)
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http
    app.state.runtime.close()


def make_workflow(client) -> str:
    response = client.post(
        "/api/workflows",
        json={"name": f"wf-{uuid.uuid4().hex[:8]}", "status": "active"},
        headers=HEADERS,
    )
    assert response.status_code == 201, response.text
    workflow_id = response.json()["id"]
    job = {
        "name": "Ingest tiny",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "tiny/t.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": f"bronze_t_{uuid.uuid4().hex[:8]}"}},
    }
    created = client.post(f"/api/workflows/{workflow_id}/jobs", json=job, headers=HEADERS)
    assert created.status_code == 201, created.text
    return workflow_id


def wait_ended(client, execution_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        execution = client.get(f"/api/executions/{execution_id}", headers=HEADERS).json()
        if execution["status"] in ("succeeded", "failed", "cancelled"):
            return execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.1)


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

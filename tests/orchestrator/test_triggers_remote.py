"""An orchestrator served apart from the catalog asks it what a workflow is (its internal
API, with the service secret) before it saves a trigger; when it cannot know, the request
gets a 503 that says why — never a trigger on a workflow nobody checked."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from flowforge.app import create_single_service_app
from tests.conftest import ADMIN_TOKEN, free_port, make_settings, served

SECRET = "t" * 40
H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CRON = {"kind": "cron", "settings": {"expression": "0 3 * * *", "timezone": "Europe/Paris"}}


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'flowforge.db'}"


@pytest.fixture
def catalog(tmp_path, database_url) -> Iterator[tuple[str, str]]:
    """The catalog alone, served for real, with one workflow."""
    app = create_single_service_app(
        "catalog", make_settings(tmp_path / "catalog", database_url, service_secret=SECRET)
    )
    with served(app, "the catalog") as url:
        workflow = TestClient(app).post("/api/workflows", json={"name": "remote"}, headers=H)
        assert workflow.status_code == 201, workflow.text
        yield url, workflow.json()["id"]


def orchestrator(tmp_path, database_url, **settings) -> TestClient:
    # An orchestrator alone reaches its workers through a broker (nothing is sent here).
    options = make_settings(
        tmp_path / "orchestrator",
        database_url,
        broker_url="redis://127.0.0.1:6379/14",
        **settings,
    )
    return TestClient(create_single_service_app("orchestrator", options))


def test_the_catalogs_answer_lets_a_trigger_be_saved_or_404s(tmp_path, database_url, catalog):
    url, workflow_id = catalog
    with orchestrator(tmp_path, database_url, service_secret=SECRET, catalog_url=url) as client:
        created = client.post(f"/api/workflows/{workflow_id}/triggers", json=CRON, headers=H)
        assert created.status_code == 201, created.text
        assert len(created.json()["nextFireTimes"]) == 5
        missing = client.post("/api/workflows/nope/triggers", json=CRON, headers=H)
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_a_catalog_that_does_not_answer_is_a_503(tmp_path, database_url, catalog):
    url, workflow_id = catalog
    with orchestrator(tmp_path, database_url, service_secret=SECRET, catalog_url=url) as client:
        # the token is checked (and cached) while the catalog answers ...
        assert client.get(f"/api/workflows/{workflow_id}/triggers", headers=H).status_code == 200
        client.app.state.settings.catalog_url = f"http://127.0.0.1:{free_port()}"
        # ... then the catalog is gone: whether the workflow exists cannot be known
        refused = client.post(f"/api/workflows/{workflow_id}/triggers", json=CRON, headers=H)
    assert refused.status_code == 503, refused.text
    assert "does not answer" in refused.json()["detail"]


def test_a_webhook_reaches_the_orchestrator_alone_and_is_handed_to_the_catalog(
    tmp_path, database_url, catalog
):
    import time

    from flowforge_orchestrator.triggers.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    url, workflow_id = catalog
    with orchestrator(tmp_path, database_url, service_secret=SECRET, catalog_url=url) as client:
        created = client.post(
            f"/api/workflows/{workflow_id}/triggers", json={"kind": "webhook"}, headers=H
        )
        assert created.status_code == 201, created.text
        trigger = created.json()
        body, at = b'{"partner": "x"}', str(int(time.time()))
        unsigned = client.post(f"/api/hooks/{trigger['id']}", content=body)
        assert unsigned.status_code == 401, unsigned.text
        headers = {TIMESTAMP_HEADER: at, SIGNATURE_HEADER: sign(trigger["secret"], at, body)}
        accepted = client.post(f"/api/hooks/{trigger['id']}", content=body, headers=headers)
        # Asked of the catalog through the broker (its worker starts the run).
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["outcome"] == "requested"
        replay = client.post(f"/api/hooks/{trigger['id']}", content=body, headers=headers)
        assert replay.status_code == 409, replay.text


def test_an_event_trigger_learns_the_workflows_csv_jobs_from_the_catalog(
    tmp_path, database_url, catalog
):
    url, workflow_id = catalog
    event = {"kind": "event", "settings": {"prefix": "incoming/", "pattern": "*.csv"}}
    with orchestrator(tmp_path, database_url, service_secret=SECRET, catalog_url=url) as client:
        refused = client.post(f"/api/workflows/{workflow_id}/triggers", json=event, headers=H)
        assert refused.status_code == 422, refused.text
        assert "settings.jobId" in refused.text and "no CSV job" in refused.text
        job = httpx.post(
            f"{url}/api/workflows/{workflow_id}/jobs",
            json={
                "name": "Ingest",
                "type": "file-based",
                "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "x.csv"}},
                "destinationConfig": {"bronzeConfig": {"tableName": "bronze_remote"}},
            },
            headers=H,
        )
        assert job.status_code == 201, job.text
        created = client.post(f"/api/workflows/{workflow_id}/triggers", json=event, headers=H)
        assert created.status_code == 201, created.text
        assert created.json()["settings"]["jobId"] == job.json()["id"]

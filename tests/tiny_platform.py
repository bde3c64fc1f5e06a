"""The embedded app served for real (uvicorn) with a two-row CSV in the landing area, and
the few calls the trigger and pause tests make against it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from flowforge.app import create_app
from tests.conftest import ADMIN_TOKEN, make_settings, served

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def served_tiny(tmp_path, database_url: str | None = None, **settings) -> Iterator[tuple]:
    """(app, client) of the embedded app with ``landing/tiny/t.csv``."""
    configured = make_settings(tmp_path, database_url, **settings)
    landing = Path(configured.landing_root) / "tiny"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "t.csv").write_text("id,name\n1,a\n2,b\n")
    app = create_app(configured)
    try:
        with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield app, client
    finally:
        app.state.runtime.close()


def make_workflow(client, name: str = "wf") -> str:
    """An active workflow of one job loading the tiny CSV into a bronze table of its own."""
    response = client.post(
        "/api/workflows",
        json={"name": f"{name}-{uuid.uuid4().hex[:8]}", "status": "active"},
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


def wait_ended(client, execution_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        execution = client.get(f"/api/executions/{execution_id}", headers=HEADERS).json()
        if execution["status"] in ("succeeded", "failed", "cancelled"):
            return execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.1)

"""Services apart: the orchestrator served alone puts WORKFLOW_SCHEDULE on the broker's
``catalog`` queue (Redis, for real) when a cron trigger is saved, and the catalog served
alone, given that message as its worker would be, shows the workflow "scheduled"."""

from __future__ import annotations

import base64
import json

import redis
from fastapi.testclient import TestClient

from flowforge.app import create_single_service_app
from flowforge_shared.contracts.workflow_events import WORKFLOW_SCHEDULE
from tests.conftest import ADMIN_TOKEN, make_settings, require_service, served

SECRET = "s" * 40
H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BROKER = "redis://127.0.0.1:6379/14"


def queued_schedule(connection: redis.Redis, workflow_id: str) -> dict | None:
    """The WORKFLOW_SCHEDULE task message for ``workflow_id`` on the catalog queue (taken
    off it), or None."""
    for raw in connection.lrange("catalog", 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") != WORKFLOW_SCHEDULE:
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        if args[0]["workflowId"] == workflow_id:
            connection.lrem("catalog", 1, raw)
            return args[0]
    return None


def test_a_cron_trigger_saved_on_the_orchestrator_alone_reaches_the_catalog_as_a_message(
    tmp_path, monkeypatch
):
    from flowforge_catalog import tasks

    require_service("Redis", "127.0.0.1", 6379)
    database_url = f"sqlite:///{tmp_path / 'flowforge.db'}"
    catalog = create_single_service_app(
        "catalog", make_settings(tmp_path / "catalog", database_url, service_secret=SECRET)
    )
    with served(catalog, "the catalog") as url:
        catalog_client = TestClient(catalog)
        created = catalog_client.post("/api/workflows", json={"name": "apart"}, headers=H)
        workflow_id = created.json()["id"]
        options = make_settings(
            tmp_path / "orchestrator",
            database_url,
            broker_url=BROKER,
            service_secret=SECRET,
            catalog_url=url,
        )
        with TestClient(create_single_service_app("orchestrator", options)) as orchestrator:
            trigger = orchestrator.post(
                f"/api/workflows/{workflow_id}/triggers",
                json={"kind": "cron", "settings": {"expression": "0 3 * * *"}},
                headers=H,
            )
            assert trigger.status_code == 201, trigger.text
        connection = redis.Redis.from_url(BROKER)
        payload = queued_schedule(connection, workflow_id)
        assert payload is not None, "no WORKFLOW_SCHEDULE on the catalog queue"
        assert payload["scheduled"] is True and payload["sequence"] == 1
        shown = catalog_client.get(f"/api/workflows/{workflow_id}", headers=H).json()
        assert shown["status"] == "draft"  # a draft stays a draft; make it active
        catalog_client.patch(
            f"/api/workflows/{workflow_id}", json={"status": "active", "version": 1}, headers=H
        )
        shown = catalog_client.get(f"/api/workflows/{workflow_id}", headers=H).json()
        assert shown["status"] == "active"  # the message has not been taken yet
        # `flowforge worker catalog`'s task, on the catalog's database.
        monkeypatch.setattr(tasks, "_database", lambda: catalog.state.database)
        assert tasks.workflow_schedule(payload) is True
        assert tasks.workflow_schedule(payload) is False  # delivered twice: applied once
        shown = catalog_client.get(f"/api/workflows/{workflow_id}", headers=H).json()
        assert shown["status"] == "scheduled"

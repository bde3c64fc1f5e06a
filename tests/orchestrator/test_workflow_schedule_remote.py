"""Services apart, on Redis for real: the orchestrator served alone puts WORKFLOW_SCHEDULE on
the ``catalog`` queue when a cron trigger is saved, and the catalog worker's task makes the
workflow read "scheduled"; the catalog served alone puts WORKFLOW_DELETED on the ``events``
queue when a workflow is deleted, and the events worker's task disables the dependency
trigger waiting for it."""

from __future__ import annotations

import base64
import json

import redis
from fastapi.testclient import TestClient

from flowforge.app import create_single_service_app
from flowforge_shared.contracts.workflow_events import WORKFLOW_DELETED, WORKFLOW_SCHEDULE
from tests.conftest import ADMIN_TOKEN, make_settings, require_service, served

SECRET = "s" * 40
H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BROKER = "redis://127.0.0.1:6379/14"


def queued(connection: redis.Redis, queue: str, task: str, workflow_id: str) -> dict | None:
    """The ``task`` message for ``workflow_id`` on ``queue`` (taken off it), or None."""
    for raw in connection.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") != task:
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        if args[0]["workflowId"] == workflow_id:
            connection.lrem(queue, 1, raw)
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
        payload = queued(connection, "catalog", WORKFLOW_SCHEDULE, workflow_id)
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


def test_a_workflow_deleted_on_the_catalog_alone_disables_its_dependents_through_the_broker(
    tmp_path, monkeypatch
):
    from flowforge_orchestrator import tasks

    require_service("Redis", "127.0.0.1", 6379)
    database_url = f"sqlite:///{tmp_path / 'flowforge.db'}"
    catalog = create_single_service_app(
        "catalog",
        make_settings(tmp_path / "catalog", database_url, service_secret=SECRET, broker_url=BROKER),
    )
    with served(catalog, "the catalog") as url:
        catalog_client = TestClient(catalog)
        upstream, downstream = (
            catalog_client.post("/api/workflows", json={"name": name}, headers=H).json()["id"]
            for name in ("upstream", "downstream")
        )
        options = make_settings(
            tmp_path / "orchestrator",
            database_url,
            broker_url=BROKER,
            service_secret=SECRET,
            catalog_url=url,
        )
        orchestrator_app = create_single_service_app("orchestrator", options)
        with TestClient(orchestrator_app) as orchestrator:
            path = f"/api/workflows/{downstream}/triggers"
            created = orchestrator.post(
                path, json={"kind": "dependency", "settings": {"upstream": [upstream]}}, headers=H
            )
            assert created.status_code == 201, created.text
            trigger = created.json()
            deleted = catalog_client.delete(f"/api/workflows/{upstream}", headers=H)
            assert deleted.status_code == 204, deleted.text
            payload = queued(redis.Redis.from_url(BROKER), "events", WORKFLOW_DELETED, upstream)
            assert payload is not None, "no WORKFLOW_DELETED on the events queue"
            assert payload["name"] == "upstream"
            still = orchestrator.get(f"{path}/{trigger['id']}", headers=H).json()
            assert still["enabled"] is True  # the events worker has not taken it yet
            # `flowforge worker events`'s task, on the orchestrator's database.
            context = (orchestrator_app.state.database, None, None)
            monkeypatch.setattr(tasks, "_context", lambda: context)
            assert tasks.workflow_deleted(payload) == [trigger["id"]]
            assert tasks.workflow_deleted(payload) == []  # delivered twice: once
            shown = orchestrator.get(f"{path}/{trigger['id']}", headers=H).json()
            assert shown["enabled"] is False and "upstream" in shown["disabledReason"]

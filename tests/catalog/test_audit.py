import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from flowforge_shared.audit import MASK, mask_secrets
from tests.catalog.factories import csv_job, workflow


def entries(api, **params):
    response = api.get("/api/audit", params=params)
    assert response.status_code == 200
    return response.json()["data"]


def test_workflow_lifecycle_is_audited_with_diffs(editor, admin):
    created = editor.post("/api/workflows", json=workflow(status="active")).json()
    url = f"/api/workflows/{created['id']}"
    editor.patch(url, json={"description": "new", "version": 1})
    editor.post(f"{url}/pause")
    editor.delete(url)
    log = entries(admin, entityType="workflow", entityId=created["id"])
    assert [entry["action"] for entry in log] == [
        "workflow.delete",
        "workflow.pause",
        "workflow.update",
        "workflow.create",
    ]
    update = log[2]
    assert update["actor"] == "test editor"
    assert update["diff"] == {
        "before": {"description": "", "version": 1},
        "after": {"description": "new", "version": 2},
    }
    assert log[3]["diff"]["before"] is None and log[3]["diff"]["after"]["name"] == created["name"]
    assert log[0]["diff"]["after"] is None


def test_job_changes_are_audited_and_filterable_by_actor_and_time(editor, admin):
    wf = editor.post("/api/workflows", json=workflow()).json()
    job = editor.post(f"/api/workflows/{wf['id']}/jobs", json=csv_job()).json()
    editor.patch(
        f"/api/workflows/{wf['id']}/jobs/{job['id']}", json={"name": "Renamed", "version": 1}
    )
    log = entries(admin, entityType="job", entityId=job["id"], actor="test editor")
    assert [entry["action"] for entry in log] == ["job.update", "job.create"]
    assert log[0]["diff"] == {"before": {"name": "Ingest CRM CSV"}, "after": {"name": "Renamed"}}
    since = log[0]["at"]
    later = entries(admin, entityId=job["id"], since=since)
    assert [entry["action"] for entry in later] == ["job.update"]
    assert entries(admin, entityId=job["id"], actor="someone else") == []


def test_token_secrets_never_reach_the_audit_log(admin):
    created = admin.post("/api/tokens", json={"name": "masked", "role": "viewer"}).json()
    admin.delete(f"/api/tokens/{created['id']}")
    log = admin.get("/api/audit", params={"entityType": "token", "entityId": created["id"]})
    assert created["token"] not in log.text
    assert [entry["action"] for entry in log.json()["data"]] == ["token.revoke", "token.create"]


def test_secrets_in_configs_are_masked_in_audit_diffs(editor, admin):
    wf = editor.post("/api/workflows", json=workflow()).json()
    job = csv_job()
    job["description"] = "Server=tcp:db,1433;User ID=sa;Password=Sup3r;Secret;Encrypt=True"
    created = editor.post(f"/api/workflows/{wf['id']}/jobs", json=job).json()
    log = admin.get("/api/audit", params={"entityId": created["id"]})
    assert "Sup3r" not in log.text
    assert f"Password={MASK}" in log.json()["data"][0]["diff"]["after"]["description"]


def test_mask_secrets_covers_keys_strings_and_urls():
    masked = mask_secrets(
        {
            "password": "p1",
            "nested": [{"clientSecret": "s2", "hasPassword": True, "apiKey": None}],
            "url": "postgresql://user:p3@host/db",
            "odbc": "DRIVER={ODBC Driver 18};PWD={p;4};SERVER=x",
        }
    )
    text_form = str(masked)
    for secret in ("p1", "s2", "p3", "p;4"):
        assert secret not in text_form
    assert masked["nested"][0]["hasPassword"] is True
    assert masked["nested"][0]["apiKey"] is None


def test_no_api_route_changes_or_deletes_audit_entries(backend):
    paths = backend["app"].openapi()["paths"]
    methods = {
        method for path, ops in paths.items() if path.startswith("/api/audit") for method in ops
    }
    assert methods == {"get"}


def test_database_refuses_to_edit_or_delete_audit_entries(backend, editor):
    editor.post("/api/workflows", json=workflow())
    engine = backend["app"].state.database.engine
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with engine.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement))

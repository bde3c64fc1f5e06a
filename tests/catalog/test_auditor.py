"""The auditor role (issue 12): reads everything — the audit log and the token list included —
and changes nothing. A viewer still cannot read the audit log."""

from __future__ import annotations

import pytest

from tests.catalog.factories import csv_job, workflow
from tests.conftest import Api


@pytest.fixture
def auditor(backend, admin) -> Api:
    response = admin.post("/api/tokens", json={"name": "test auditor", "role": "auditor"})
    assert response.status_code == 201, response.text
    assert response.json()["role"] == "auditor"
    return Api(backend["client"], response.json()["token"])


def test_an_auditor_reads_the_audit_log_and_everything_else(auditor, editor, viewer):
    created = editor.post("/api/workflows", json=workflow()).json()
    job = editor.post(f"/api/workflows/{created['id']}/jobs", json=csv_job()).json()
    log = auditor.get("/api/audit", params={"entityId": created["id"]})
    assert log.status_code == 200, log.text
    assert [entry["action"] for entry in log.json()["data"]] == ["workflow.create"]
    for url in (
        f"/api/workflows/{created['id']}",
        f"/api/workflows/{created['id']}/jobs/{job['id']}",
        "/api/workflows",
        "/api/executions",
        "/api/connections",
        "/api/files",
        "/api/templates",
        "/api/catalog/assets",
        "/api/tokens",
    ):
        response = auditor.get(url)
        assert response.status_code == 200, (url, response.text)
    tokens = auditor.get("/api/tokens").json()["data"]
    assert "test auditor" in [token["name"] for token in tokens]
    assert all("token" not in token for token in tokens)
    # A viewer still reads neither the audit log nor the token list; an editor no token list.
    for api, url in ((viewer, "/api/audit"), (viewer, "/api/tokens"), (editor, "/api/tokens")):
        refused = api.get(url)
        assert refused.status_code == 403, (url, refused.text)


def test_an_auditor_changes_nothing_on_any_route(backend, auditor, editor):
    """Every route that is not a read answers 403 to an auditor, naming the role."""
    created = editor.post("/api/workflows", json=workflow()).json()
    checked = 0
    for path, operations in backend["app"].openapi()["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path.replace("{workflow_id}", created["id"])
        for method in operations:
            if method.upper() in {"GET", "HEAD", "OPTIONS"}:
                continue
            response = backend["client"].request(
                method.upper(), url, json={}, headers=auditor.headers
            )
            if path.startswith("/api/internal/"):  # services only: no user token opens them
                assert response.status_code == 401, (method, path, response.text)
                continue
            if path.startswith("/api/hooks/"):  # a webhook's signature, not a token: unsigned
                assert response.status_code in (401, 404), (method, path, response.text)
                continue
            assert response.status_code == 403, (method, path, response.text)
            assert "role auditor may not do this" in response.json()["detail"]
            checked += 1
    assert checked >= 20
    assert editor.get(f"/api/workflows/{created['id']}").json()["version"] == 1

"""Every PATCH must say which version it was made from (``version`` or ``If-Match``): without
one it is refused with 428 and nothing changes, so a change can never overwrite, unseen, a
change someone made since (issue 12, a lost update)."""

from __future__ import annotations

import pytest

from tests.catalog.factories import csv_job, workflow


def assert_precondition_required(response) -> None:
    assert response.status_code == 428, response.text
    detail = response.json()["detail"]
    assert '"version"' in detail and "If-Match" in detail, detail


@pytest.mark.parametrize("if_match", [None, "*"])
def test_a_workflow_patch_without_a_version_is_428_and_changes_nothing(editor, if_match):
    created = editor.post("/api/workflows", json=workflow()).json()
    url = f"/api/workflows/{created['id']}"
    headers = {"If-Match": if_match} if if_match else {}
    assert_precondition_required(editor.patch(url, json={"description": "lost"}, headers=headers))
    after = editor.get(url).json()
    assert after["description"] == created["description"] and after["version"] == 1
    # With the version (body or ETag) the same change is taken.
    assert editor.patch(url, json={"description": "kept", "version": 1}).status_code == 200
    etag = editor.get(url).headers["ETag"]
    taken = editor.patch(url, json={"description": "again"}, headers={"If-Match": etag})
    assert taken.status_code == 200, taken.text


def test_a_job_patch_without_a_version_is_428_and_changes_nothing(editor):
    wf = editor.post("/api/workflows", json=workflow()).json()
    job = editor.post(f"/api/workflows/{wf['id']}/jobs", json=csv_job()).json()
    url = f"/api/workflows/{wf['id']}/jobs/{job['id']}"
    assert_precondition_required(editor.patch(url, json={"name": "Lost"}))
    assert editor.get(url).json()["name"] == job["name"]
    assert editor.patch(url, json={"name": "Kept", "version": 1}).status_code == 200


def test_a_connection_patch_without_a_version_is_428_and_changes_nothing(editor):
    created = editor.post(
        "/api/connections", json={"name": "precondition", "type": "sqlite", "database": "a.db"}
    ).json()
    url = f"/api/connections/{created['id']}"
    assert_precondition_required(editor.patch(url, json={"database": "b.db"}))
    assert editor.get(url).json()["database"] == "a.db"
    taken = editor.patch(url, json={"database": "b.db"}, headers={"If-Match": '"1"'})
    assert taken.status_code == 200, taken.text


def test_a_template_patch_needs_the_version_read_too(admin):
    url = "/api/templates/bfsi-customer-360"
    read = admin.get(url)
    version = read.json()["version"]
    assert read.headers["ETag"] == f'"{version}"'
    assert_precondition_required(admin.patch(url, json={"isActive": False}))
    assert admin.get(url).json()["isActive"] is True
    changed = admin.patch(url, json={"isActive": False, "version": version})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] != version
    stale = admin.patch(url, json={"isActive": True}, headers={"If-Match": f'"{version}"'})
    assert stale.status_code == 409, stale.text
    fresh = admin.patch(url, json={"isActive": True}, headers={"If-Match": changed.headers["ETag"]})
    assert fresh.status_code == 200, fresh.text
    assert admin.get(url).json()["isActive"] is True

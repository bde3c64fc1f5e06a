"""Re-uploads are versions (issue 12): a job can follow the newest upload of a name, and every
run records the exact file (id + sha256) it read. Before, a rerun after a re-upload silently
read the old file."""

from __future__ import annotations

import hashlib
import time

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FIRST = b"customer_id,name\n1,Ann\n2,Bob\n"
SECOND = b"customer_id,name\n1,Ann\n2,Bob\n3,Cid\n"


@pytest.fixture
def api(tmp_path):
    from flowforge.app import create_app

    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        client.settings = settings
        yield client
    app.state.database.dispose()


def upload(api, content: bytes, name: str = "customers.csv") -> dict:
    response = api.post("/api/files", files={"file": (name, content, "text/csv")}, headers=H)
    assert response.status_code == 201, response.text
    return response.json()


def csv_job(name: str, table: str, **file_config) -> dict:
    return {
        "name": name,
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": file_config},
        "destinationConfig": {"bronzeConfig": {"tableName": table, "writeMode": "overwrite"}},
    }


def run(api, workflow_id: str) -> dict:
    started = api.post(f"/api/workflows/{workflow_id}/run", headers=H)
    assert started.status_code == 202, started.text
    for _ in range(300):
        state = api.get(f"/api/executions/{started.json()['executionId']}", headers=H).json()
        if state["status"] in ("succeeded", "failed"):
            assert state["status"] == "succeeded", state
            return {job["name"]: job for job in state["jobs"]}
        time.sleep(0.1)
    raise AssertionError(state)


def names(api, table: str) -> list[str]:
    return sorted(pl.read_delta(f"{api.settings.lake_root}/bronze/{table}")["name"].to_list())


def test_a_job_following_a_name_reads_the_newest_upload_and_records_it(api):
    first = upload(api, FIRST)
    assert first["version"] == 1 and first["originalName"] == "customers.csv"
    wf = api.post("/api/workflows", json={"name": "versions"}, headers=H).json()
    jobs = f"/api/workflows/{wf['id']}/jobs"
    follow = api.post(
        jobs, json=csv_job("Follow", "bronze_follow", fileName="customers.csv"), headers=H
    )
    assert follow.status_code == 201, follow.text
    assert follow.json()["sourceConfig"]["fileConfig"]["fileName"] == "customers.csv"
    pinned = api.post(jobs, json=csv_job("Pinned", "bronze_pinned", fileId=first["id"]), headers=H)
    assert pinned.status_code == 201, pinned.text

    ran = run(api, wf["id"])
    assert names(api, "bronze_follow") == ["Ann", "Bob"]
    assert ran["Follow"]["inputs"] == [
        {
            "fileId": first["id"],
            "fileName": "customers.csv",
            "version": 1,
            "sha256": hashlib.sha256(FIRST).hexdigest(),
            "size": len(FIRST),
            "filePath": first["filePath"],
            "followed": {"fileName": "customers.csv", "fileVersion": "latest"},
        }
    ]

    second = upload(api, SECOND)
    assert second["version"] == 2 and second["id"] != first["id"]
    listed = api.get("/api/files", params={"name": "customers.csv"}, headers=H).json()
    assert [(f["version"], f["id"]) for f in listed["data"]] == [
        (2, second["id"]),
        (1, first["id"]),
    ]

    ran = run(api, wf["id"])
    # The follower read the new version; the job pinned to the first upload still reads it.
    assert names(api, "bronze_follow") == ["Ann", "Bob", "Cid"]
    assert names(api, "bronze_pinned") == ["Ann", "Bob"]
    assert ran["Follow"]["inputs"][0]["fileId"] == second["id"]
    assert ran["Follow"]["inputs"][0]["version"] == 2
    assert ran["Follow"]["inputs"][0]["sha256"] == hashlib.sha256(SECOND).hexdigest()
    assert ran["Pinned"]["inputs"][0]["fileId"] == first["id"]
    assert ran["Pinned"]["inputs"][0]["sha256"] == hashlib.sha256(FIRST).hexdigest()

    # The version a job follows cannot be deleted under it; an older one can.
    refused = api.delete(f"/api/files/{second['id']}", headers=H)
    assert refused.status_code == 409 and "Follow" in refused.json()["detail"]


def test_a_pinned_version_and_unknown_names(api):
    first = upload(api, FIRST, "people.csv")
    upload(api, SECOND, "people.csv")
    wf = api.post("/api/workflows", json={"name": "pinned"}, headers=H).json()
    jobs = f"/api/workflows/{wf['id']}/jobs"
    job = csv_job("V1", "bronze_v1", fileName="people.csv", fileVersion=1)
    assert api.post(jobs, json=job, headers=H).status_code == 201
    ran = run(api, wf["id"])
    assert ran["V1"]["inputs"][0]["fileId"] == first["id"]
    assert names(api, "bronze_v1") == ["Ann", "Bob"]

    missing = api.post(jobs, json=csv_job("X", "bronze_x", fileName="nobody.csv"), headers=H)
    assert missing.status_code == 422
    detail = missing.json()["detail"][0]
    assert detail["field"] == "sourceConfig.fileConfig.fileName"
    assert "no upload is named" in detail["msg"] and "'nobody.csv'" in detail["msg"]
    no_version = csv_job("Y", "bronze_y", fileName="people.csv", fileVersion=9)
    assert api.post(jobs, json=no_version, headers=H).status_code == 422
    both = csv_job("Z", "bronze_z", fileName="people.csv", fileId=first["id"])
    response = api.post(jobs, json=both, headers=H)
    assert response.status_code == 422
    assert "exactly one of filePath, fileId or fileName" in response.text


def test_a_landing_path_job_records_the_digest_of_the_bytes_it_read(api):
    """A filePath job's run records sha256 and size of the exact bytes the worker read; a
    replaced file gives the next run a new digest and leaves the old run's record alone."""
    landed = api.settings.data_dir / "landing" / "drops" / "customers.csv"
    landed.parent.mkdir(parents=True, exist_ok=True)
    landed.write_bytes(FIRST)
    wf = api.post("/api/workflows", json={"name": "landing"}, headers=H).json()
    job = csv_job("Drop", "bronze_drop", filePath="drops/customers.csv")
    assert api.post(f"/api/workflows/{wf['id']}/jobs", json=job, headers=H).status_code == 201

    first_run = run(api, wf["id"])["Drop"]
    assert first_run["inputs"] == [
        {
            "filePath": "drops/customers.csv",
            "sha256": hashlib.sha256(FIRST).hexdigest(),
            "size": len(FIRST),
        }
    ]

    landed.write_bytes(SECOND)
    second_run = run(api, wf["id"])["Drop"]
    assert names(api, "bronze_drop") == ["Ann", "Bob", "Cid"]
    assert second_run["inputs"][0]["sha256"] == hashlib.sha256(SECOND).hexdigest()
    assert second_run["inputs"][0]["size"] == len(SECOND)
    old = api.get(f"/api/executions?workflowId={wf['id']}", headers=H).json()["data"]
    recorded = {
        execution["jobs"][0]["jobRunId"]: execution["jobs"][0]["inputs"][0]["sha256"]
        for execution in old
    }
    assert recorded == {
        first_run["jobRunId"]: hashlib.sha256(FIRST).hexdigest(),
        second_run["jobRunId"]: hashlib.sha256(SECOND).hexdigest(),
    }


def test_a_landing_path_run_that_fails_while_parsing_still_records_what_it_read(api):
    bad = b"customer_id,name\n1,Ann\nnot-a-number,Bob\n"
    landed = api.settings.data_dir / "landing" / "bad.csv"
    landed.parent.mkdir(parents=True, exist_ok=True)
    landed.write_bytes(bad)
    wf = api.post("/api/workflows", json={"name": "bad"}, headers=H).json()
    job = csv_job(
        "Bad",
        "bronze_bad",
        filePath="bad.csv",
        malformedRows="fail",
        columns=[{"name": "customer_id", "type": "integer"}],
    )
    assert api.post(f"/api/workflows/{wf['id']}/jobs", json=job, headers=H).status_code == 201
    started = api.post(f"/api/workflows/{wf['id']}/run", headers=H).json()
    for _ in range(300):
        state = api.get(f"/api/executions/{started['executionId']}", headers=H).json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert state["status"] == "failed", state
    assert "not-a-number" in state["jobs"][0]["error"]["message"], state
    assert state["jobs"][0]["inputs"] == [
        {"filePath": "bad.csv", "sha256": hashlib.sha256(bad).hexdigest(), "size": len(bad)}
    ]


def test_a_job_changed_to_a_file_never_detected_keeps_the_change(api):
    """Changing a job to an upload whose schema nobody asked for yet detects it inside the
    job's own write: the change is kept (a detection that closed the session dropped it,
    while the PATCH answered 200)."""
    first = upload(api, FIRST)
    wf = api.post("/api/workflows", json={"name": "repointed"}, headers=H).json()
    jobs = f"/api/workflows/{wf['id']}/jobs"
    job = api.post(jobs, json=csv_job("Load", "bronze_load", fileId=first["id"]), headers=H)
    assert job.status_code == 201, job.text
    second = upload(api, SECOND, name="other.csv")
    changed = api.patch(
        f"{jobs}/{job.json()['id']}",
        json={"sourceConfig": {"type": "csv", "fileConfig": {"fileId": second["id"]}}},
        headers={**H, "If-Match": f'"{job.json()["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    read = api.get(f"{jobs}/{job.json()['id']}", headers=H).json()
    assert read["sourceConfig"]["fileConfig"]["fileId"] == second["id"]
    assert read["version"] == job.json()["version"] + 1
    run(api, wf["id"])
    assert names(api, "bronze_load") == ["Ann", "Bob", "Cid"]

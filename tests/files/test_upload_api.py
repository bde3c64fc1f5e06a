"""POST /api/files and friends, against the embedded app (real multipart over HTTP)."""

import hashlib
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CSV = b"customer_id,email,amount,signup_date\n1,a@example.com,10.50,2024-01-02\n2,b@example.com,=SUM(A1),2024-02-03\n3,c@example.com,7.25,2024-03-04\n"


@pytest.fixture
def api(tmp_path):
    from flowforge.app import create_app

    settings = make_settings(tmp_path, upload_max_bytes=64 * 1024)
    app = create_app(settings)
    with TestClient(app) as client:
        client.settings = settings
        yield client
    app.state.database.dispose()


def upload(api, content: bytes = CSV, name: str = "customers.csv", **kwargs):
    return api.post("/api/files", files={"file": (name, content, "text/csv")}, headers=H, **kwargs)


def stored(api, body) -> Path:
    return Path(api.settings.landing_root) / body["filePath"]


def test_upload_streams_to_a_generated_name_with_its_hash(api):
    response = upload(api)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["originalName"] == "customers.csv"
    assert body["size"] == len(CSV)
    assert body["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert body["filePath"] == f"uploads/{body['id']}.csv"
    assert stored(api, body).read_bytes() == CSV
    assert api.get(f"/api/files/{body['id']}", headers=H).json() == body
    assert body["id"] in [f["id"] for f in api.get("/api/files", headers=H).json()["data"]]


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("/abs/path/x.csv", "x.csv"),
        ("a\x00b.csv", None),
        ("..\\..\\win.csv", "win.csv"),
    ],
)
def test_hostile_names_are_only_metadata(api, name, kept):
    response = upload(api, name=name)
    assert response.status_code == 201
    body = response.json()
    if kept is not None:
        assert body["originalName"] == kept
    assert "\x00" not in body["originalName"] and "/" not in body["originalName"]
    assert (
        stored(api, body).resolve().parent
        == (Path(api.settings.landing_root) / "uploads").resolve()
    )


def test_upload_over_the_limit_is_413_and_leaves_nothing(api):
    big = b"id\n" + b"1234567\n" * 10_000  # 80 kB > 64 kB
    response = upload(api, big)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    uploads = Path(api.settings.landing_root) / "uploads"
    assert not any(uploads.glob("*")) if uploads.exists() else True
    assert api.get("/api/files", headers=H).json()["count"] == 0


def test_upload_without_a_file_field_is_422(api):
    response = api.post("/api/files", data={"other": "x"}, headers=H)
    assert response.status_code == 422
    response = api.post("/api/files", content=b"id\n1\n", headers={**H, "content-type": "text/csv"})
    assert response.status_code == 422


def test_viewer_cannot_upload(api):
    token = api.post("/api/tokens", json={"name": "v", "role": "viewer"}, headers=H).json()["token"]
    response = api.post(
        "/api/files",
        files={"file": ("x.csv", CSV, "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403


def test_concurrent_uploads_each_land_intact(api):
    results = {}

    def send(index):
        content = f"id,value\n{index},{'x' * index}\n".encode() * 50
        results[index] = (content, upload(api, content, name=f"f{index}.csv"))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = set()
    for content, response in results.values():
        assert response.status_code == 201
        body = response.json()
        ids.add(body["id"])
        assert stored(api, body).read_bytes() == content
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert len(ids) == 8


def test_schema_and_preview(api):
    body = upload(api).json()
    schema = api.get(f"/api/files/{body['id']}/schema", headers=H)
    assert schema.status_code == 200, schema.text
    detected = schema.json()
    assert detected["delimiter"] == "," and detected["hasHeader"] is True
    columns = {c["name"]: c for c in detected["columns"]}
    assert columns["customer_id"]["type"] == "integer"
    assert columns["email"]["semanticType"] == "email" and columns["email"]["pii"] is True
    assert "customer_id" in detected["candidatePrimaryKeys"]
    preview = api.get(f"/api/files/{body['id']}/preview", params={"rows": 2}, headers=H).json()
    assert preview["columns"] == ["customer_id", "email", "amount", "signup_date"]
    assert len(preview["rows"]) == 2
    assert preview["rows"][1]["amount"] == "=SUM(A1)"  # returned as data


def test_a_job_from_an_uploaded_file_takes_its_detected_schema_and_runs(api):
    body = upload(api, CSV.replace(b"=SUM(A1)", b"3.00")).json()
    workflow = api.post("/api/workflows", json={"name": "from-upload"}, headers=H).json()
    job = {
        "name": "Ingest upload",
        "type": "file-based",
        "sourceConfig": {
            "type": "csv",
            "fileConfig": {"fileId": body["id"], "columns": [{"name": "amount", "type": "string"}]},
        },
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_upload"}},
    }
    created = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H)
    assert created.status_code == 201, created.text
    file_config = created.json()["sourceConfig"]["fileConfig"]
    assert file_config["delimiter"] == "," and file_config["hasHeader"] is True
    columns = {c["name"]: c for c in file_config["columns"]}
    assert columns["amount"]["type"] == "string"  # the user's override wins
    assert columns["customer_id"]["type"] == "integer"

    execution = api.post(f"/api/workflows/{workflow['id']}/run", headers=H).json()
    import time

    for _ in range(100):
        state = api.get(f"/api/executions/{execution['executionId']}", headers=H).json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert state["status"] == "succeeded", state
    import polars as pl

    bronze = pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_upload")
    assert bronze.height == 3 and bronze.schema["amount"] == pl.Utf8
    assert bronze.schema["customer_id"] == pl.Int64

    refused = api.delete(f"/api/files/{body['id']}", headers=H)
    assert refused.status_code == 409 and "Ingest upload" in refused.json()["detail"]
    api.delete(f"/api/workflows/{workflow['id']}", headers=H)
    assert api.delete(f"/api/files/{body['id']}", headers=H).status_code == 204
    assert not stored(api, body).exists()
    assert api.get(f"/api/files/{body['id']}", headers=H).status_code == 404


def test_job_naming_an_unknown_file_is_422(api):
    workflow = api.post("/api/workflows", json={"name": "no-file"}, headers=H).json()
    job = {
        "name": "x",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"fileId": "0000"}},
        "destinationConfig": {"bronzeConfig": {"tableName": "b"}},
    }
    response = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "sourceConfig.fileConfig.fileId"


def test_undetectable_file_schema_is_422(api):
    body = upload(api, b"\x00\x01\x02\xff\xfe binary", name="image.csv").json()
    response = api.get(f"/api/files/{body['id']}/schema", headers=H)
    assert response.status_code == 422

from tests.catalog.factories import csv_job, workflow
from tests.conftest import unique


def create(editor, **fields):
    response = editor.post("/api/workflows", json=workflow(**fields))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_defaults_owner_and_etag(editor):
    response = editor.post("/api/workflows", json=workflow(team="risk", tags=["bfsi", "bfsi"]))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "draft"
    assert body["environment"] == "development"
    assert body["tags"] == ["bfsi"]
    assert body["owner"] == "test editor"
    assert body["version"] == 1
    assert body["jobCount"] == 0
    assert response.headers["ETag"] == '"1"'


def test_get_and_list_with_filters(editor, viewer):
    tag = unique("tag")
    first = create(editor, tags=[tag], environment="production", team="risk")
    create(editor, tags=[tag], environment="staging")
    assert viewer.get(f"/api/workflows/{first['id']}").json()["name"] == first["name"]
    listed = viewer.get("/api/workflows", params={"tag": tag}).json()
    assert listed["count"] == 2
    production = viewer.get(
        "/api/workflows", params={"tag": tag, "environment": "production"}
    ).json()
    assert [item["id"] for item in production["data"]] == [first["id"]]
    assert viewer.get("/api/workflows", params={"q": first["name"].upper()}).json()["count"] == 1
    page = viewer.get("/api/workflows", params={"tag": tag, "limit": 1, "offset": 1}).json()
    assert page["count"] == 2 and len(page["data"]) == 1


def test_a_listed_workflow_reads_as_its_own_answer_job_count_included(editor, viewer):
    tag = unique("tag")
    with_jobs = create(editor, tags=[tag, "second"], team="risk", environment="staging")
    for name in ("A", "B"):
        job = editor.post(f"/api/workflows/{with_jobs['id']}/jobs", json=csv_job(name=name))
        assert job.status_code == 201, job.text
    without = create(editor, tags=[tag])
    listed = viewer.get("/api/workflows", params={"tag": tag}).json()
    assert listed["count"] == 2
    by_id = {item["id"]: item for item in listed["data"]}
    for created, jobs in ((with_jobs, 2), (without, 0)):
        answer = viewer.get(f"/api/workflows/{created['id']}")
        assert answer.headers["ETag"] == f'"{created["version"]}"'
        assert answer.json() == by_id[created["id"]]
        assert answer.json()["jobCount"] == jobs
        assert {key: value for key, value in answer.json().items() if key != "jobCount"} == {
            key: value for key, value in created.items() if key != "jobCount"
        }
    named = viewer.get("/api/workflows", params={"q": with_jobs["name"]}).json()  # no tag: SQL
    assert named["count"] == 1 and named["data"] == [by_id[with_jobs["id"]]]


def test_duplicate_name_is_a_conflict(editor):
    created = create(editor)
    response = editor.post("/api/workflows", json={"name": created["name"]})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_unknown_field_and_bad_enum_are_422_with_field_path(editor):
    response = editor.post("/api/workflows", json=workflow(colour="blue"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "colour"
    response = editor.post("/api/workflows", json=workflow(environment="moon"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "environment"
    response = editor.post("/api/workflows", json=workflow(status="paused"))
    assert response.status_code == 422


def test_patch_changes_fields_and_bumps_version(editor):
    created = create(editor)
    response = editor.patch(
        f"/api/workflows/{created['id']}",
        json={"description": "Customer 360", "tags": ["x"], "version": 1},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "Customer 360"
    assert body["tags"] == ["x"]
    assert body["version"] == 2
    assert response.headers["ETag"] == '"2"'


def test_patch_with_stale_version_or_if_match_is_409(editor):
    created = create(editor)
    url = f"/api/workflows/{created['id']}"
    assert editor.patch(url, json={"description": "one", "version": 1}).status_code == 200
    stale = editor.patch(url, json={"description": "two", "version": 1})
    assert stale.status_code == 409
    assert "version 2" in stale.json()["detail"]
    stale_header = editor.patch(url, json={"description": "two"}, headers={"If-Match": '"1"'})
    assert stale_header.status_code == 409
    fresh = editor.patch(url, json={"description": "two"}, headers={"If-Match": '"2"'})
    assert fresh.status_code == 200
    assert editor.get(url).json()["description"] == "two"


def test_patch_null_on_required_field_is_422(editor):
    created = create(editor)
    response = editor.patch(f"/api/workflows/{created['id']}", json={"name": None, "version": 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "name"


def test_pause_and_resume_restore_previous_status(editor):
    created = create(editor, status="active")
    url = f"/api/workflows/{created['id']}"
    paused = editor.post(f"{url}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert editor.post(f"{url}/pause").status_code == 409
    resumed = editor.post(f"{url}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert editor.post(f"{url}/resume").status_code == 409


def test_draft_cannot_be_paused(editor):
    created = create(editor)
    response = editor.post(f"/api/workflows/{created['id']}/pause")
    assert response.status_code == 409
    assert "draft" in response.json()["detail"]


def test_clone_copies_jobs_with_new_ids_and_draft_status(editor):
    created = create(editor, status="active", tags=["t"])
    url = f"/api/workflows/{created['id']}"
    first = editor.post(f"{url}/jobs", json=csv_job(name="A")).json()
    second = csv_job(name="B")
    second["dependsOn"] = [first["id"]]
    second = editor.post(f"{url}/jobs", json=second).json()

    response = editor.post(f"{url}/clone")
    assert response.status_code == 201
    copy = response.json()
    assert copy["name"] == f"{created['name']} (copy)"
    assert copy["status"] == "draft" and copy["tags"] == ["t"] and copy["jobCount"] == 2
    jobs = editor.get(f"/api/workflows/{copy['id']}/jobs").json()["data"]
    assert {job["name"] for job in jobs} == {"A", "B"}
    assert not {job["id"] for job in jobs} & {first["id"], second["id"]}
    copied_a = next(job for job in jobs if job["name"] == "A")
    copied_b = next(job for job in jobs if job["name"] == "B")
    assert copied_b["dependsOn"] == [copied_a["id"]]
    again = editor.post(f"{url}/clone").json()
    assert again["name"] == f"{created['name']} (copy 2)"
    named = editor.post(f"{url}/clone", json={"name": unique("named")})
    assert named.status_code == 201


def test_delete_removes_workflow_and_its_jobs(editor):
    created = create(editor)
    url = f"/api/workflows/{created['id']}"
    job = editor.post(f"{url}/jobs", json=csv_job()).json()
    assert editor.delete(url).status_code == 204
    assert editor.get(url).status_code == 404
    assert editor.get(f"{url}/jobs/{job['id']}").status_code == 404
    assert editor.delete(url).status_code == 404


def test_delete_with_stale_if_match_is_409(editor):
    created = create(editor)
    url = f"/api/workflows/{created['id']}"
    editor.patch(url, json={"description": "changed", "version": 1})
    assert editor.delete(url, headers={"If-Match": '"1"'}).status_code == 409
    assert editor.get(url).status_code == 200


def test_missing_workflow_is_404_everywhere(editor):
    url = "/api/workflows/does-not-exist"
    assert editor.get(url).status_code == 404
    assert editor.patch(url, json={"description": "x"}).status_code == 404
    assert editor.post(f"{url}/pause").status_code == 404
    assert editor.post(f"{url}/resume").status_code == 404
    assert editor.post(f"{url}/clone").status_code == 404
    assert editor.get(f"{url}/jobs").status_code == 404

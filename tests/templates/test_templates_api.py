"""Templates: the gallery, the detail, instantiation with every customisation, 422s that list
every problem, and all-or-nothing creation."""

import hashlib
import time
import uuid

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BFSI = "bfsi-customer-360"


@pytest.fixture
def api(tmp_path):
    from flowforge.app import create_app

    app = create_app(make_settings(tmp_path))
    with TestClient(app) as client:
        client.app_state = app.state
        yield client
    app.state.database.dispose()


def connection(api, type_="sql-server"):
    body = {
        "name": f"core-{uuid.uuid4().hex[:6]}",
        "type": type_,
        "host": "127.0.0.1",
        "database": "CoreBanking",
        "username": "etl",
        "password": "pw",
    }
    response = api.post("/api/connections", json=body, headers=H)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def instantiate(api, **body):
    return api.post(f"/api/templates/{BFSI}/instantiate", json=body, headers=H)


def test_gallery_filters_and_detail(api):
    listed = api.get("/api/templates", headers=H).json()
    assert [t["id"] for t in listed["data"]] == [BFSI]
    assert api.get("/api/templates", params={"category": "retail"}, headers=H).json()["count"] == 0
    assert api.get("/api/templates", params={"tag": "customer-360"}, headers=H).json()["count"] == 1
    assert api.get("/api/templates", params={"q": "customer view"}, headers=H).json()["count"] == 1
    assert api.get("/api/templates", params={"industry": "banking"}, headers=H).json()["count"] == 1
    detail = api.get(f"/api/templates/{BFSI}", headers=H).json()
    jobs = {job["key"]: job for job in detail["jobs"]}
    assert jobs["silver_customer_master"]["reads"] == [
        "bronze_core_customers",
        "bronze_crm_customers",
    ]
    assert jobs["gold_customer_360"]["writes"] == "gold_customer_360"
    assert [p["key"] for p in detail["parameters"]["connections"]] == ["coreBanking"]
    assert [p["key"] for p in detail["parameters"]["files"]] == ["crmCustomers"]
    # Complete: every table a job reads is written by an earlier job.
    written = set()
    for job in detail["jobs"]:
        assert set(job["reads"]) <= written, job["key"]
        written.add(job["writes"])
    assert api.get("/api/templates/nope", headers=H).status_code == 404


def test_gallery_cards_show_complexity_time_and_the_jobs_created(api):
    """Derived from the definition: BFSI's 10 jobs, 9 kinds of transformation and 2 sources
    score advanced; 5 + 3 x 2 sources + 10 jobs = 21 minutes, rounded up to 25."""
    card = api.get("/api/templates", headers=H).json()["data"][0]
    assert (card["complexity"], card["estimatedMinutes"]) == ("advanced", 25)
    creates = {job["key"]: job for job in card["creates"]}
    assert len(creates) == 10
    assert creates["ingest_crm"] == {
        "key": "ingest_crm",
        "name": "Ingest CRM Customers",
        "type": "file-based",
        "layer": "bronze",
        "writes": "bronze_crm_customers",
    }
    assert creates["gold_customer_360"]["layer"] == "gold"
    assert {job["layer"] for job in card["creates"]} == {"bronze", "silver", "gold"}
    detail = api.get(f"/api/templates/{BFSI}", headers=H).json()
    assert (detail["complexity"], detail["estimatedMinutes"]) == ("advanced", 25)


def test_a_small_template_is_simple_and_quick():
    from flowforge_catalog.templates.service import complexity, estimated_minutes

    one_csv = {
        "parameters": {"files": [{"key": "f"}]},
        "jobs": [{"name": "Ingest", "type": "file-based", "destinationConfig": {}}],
    }
    assert (complexity(one_csv), estimated_minutes(one_csv)) == ("simple", 10)
    joined = {
        "parameters": {"connections": [{"key": "a"}, {"key": "b"}]},
        "jobs": [
            {"name": f"j{i}", "transformationConfig": {"joins": [{}], "groupBy": ["x"]}}
            for i in range(3)
        ],
    }
    assert complexity(joined) == "moderate"  # 3 jobs + 6 transformations + 2 sources = 11


def test_missing_parameters_are_listed_each(api):
    response = instantiate(api)
    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["detail"]]
    assert fields == ["connections.coreBanking", "files.crmCustomers"]
    response = instantiate(
        api,
        connections={"coreBanking": {"connectionId": "nope"}},
        files={"crmCustomers": {"fileId": "nope"}},
        tableNames={"not_a_table": "x"},
    )
    fields = [d["field"] for d in response.json()["detail"]]
    assert fields == [
        "connections.coreBanking.connectionId",
        "files.crmCustomers.fileId",
        "tableNames.not_a_table",
    ]
    assert api.get("/api/workflows", headers=H).json()["count"] == 0


def test_instantiate_with_every_customisation_and_renames(api):
    connection_id = connection(api)
    response = instantiate(
        api,
        workflowName="Customer 360 (risk)",
        team="risk-analytics",
        environment="staging",
        tags=["q3"],
        connections={"coreBanking": {"connectionId": connection_id}},
        files={"crmCustomers": {"filePath": "crm/export.csv"}},
        tableNames={
            "bronze_core_customers": "raw_customers",
            "silver_customer_master": "customers_master",
        },
    )
    assert response.status_code == 201, response.text
    workflow = response.json()
    assert (workflow["name"], workflow["team"], workflow["environment"], workflow["tags"]) == (
        "Customer 360 (risk)",
        "risk-analytics",
        "staging",
        ["q3"],
    )
    jobs = {job["name"]: job for job in workflow["jobs"]}
    assert len(jobs) == 10
    customers = jobs["Ingest Core Banking Customers"]
    assert customers["sourceConfig"]["type"] == "sql-server"
    assert customers["sourceConfig"]["databaseConfig"]["connectionId"] == connection_id
    assert customers["destinationConfig"]["bronzeConfig"]["tableName"] == "raw_customers"
    master = jobs["Build Silver Customer Master"]
    assert master["sourceConfig"]["tables"] == ["raw_customers", "bronze_crm_customers"]
    assert master["destinationConfig"]["silverConfig"]["tableName"] == "customers_master"
    gold = jobs["Build Gold Customer 360"]
    assert gold["sourceConfig"]["tables"] == ["customers_master"]
    assert (
        jobs["Ingest CRM Customers"]["sourceConfig"]["fileConfig"]["filePath"] == "crm/export.csv"
    )
    log = api.get("/api/audit", params={"entityType": "template"}, headers=H).json()["data"]
    assert log[0]["action"] == "template.instantiate"


def test_inline_connection_becomes_a_saved_encrypted_connection(api):
    response = instantiate(
        api,
        connections={
            "coreBanking": {
                "connection": {
                    "type": "postgresql",
                    "host": "127.0.0.1",
                    "database": "bank",
                    "username": "u",
                    "password": "S3cret-inline",
                }
            }
        },
        files={"crmCustomers": {"filePath": "crm.csv"}},
    )
    assert response.status_code == 201, response.text
    connections = api.get("/api/connections", headers=H).json()["data"]
    assert len(connections) == 1 and connections[0]["password"] == "********"
    assert "S3cret-inline" not in response.text
    job = next(j for j in response.json()["jobs"] if j["name"] == "Ingest Accounts")
    assert job["sourceConfig"]["type"] == "postgresql"


def test_a_failure_midway_creates_nothing(api):
    connection_id = connection(api)
    # Renaming a table onto another of the template's tables is refused before anything is made
    refused = instantiate(
        api,
        connections={"coreBanking": {"connectionId": connection_id}},
        files={"crmCustomers": {"filePath": "crm.csv"}},
        tableNames={"bronze_accounts": "bronze_transactions"},
    )
    assert refused.status_code == 422
    # A workflow name already taken fails after the connection was checked: nothing is left
    instantiate(
        api,
        workflowName="taken",
        connections={"coreBanking": {"connectionId": connection_id}},
        files={"crmCustomers": {"filePath": "crm.csv"}},
    )
    before = api.get("/api/workflows", headers=H).json()["count"]
    jobs_before = sum(w["jobCount"] for w in api.get("/api/workflows", headers=H).json()["data"])
    again = instantiate(
        api,
        workflowName="taken",
        connections={
            "coreBanking": {
                "connection": {
                    "type": "postgresql",
                    "host": "127.0.0.1",
                    "database": "b",
                    "username": "u",
                    "password": "p",
                }
            }
        },
        files={"crmCustomers": {"filePath": "crm.csv"}},
    )
    assert again.status_code == 409
    assert api.get("/api/workflows", headers=H).json()["count"] == before
    assert (
        sum(w["jobCount"] for w in api.get("/api/workflows", headers=H).json()["data"])
        == jobs_before
    )
    assert (
        len(api.get("/api/connections", headers=H).json()["data"]) == 1
    )  # the inline one rolled back


def test_admin_makes_a_template_from_a_workflow_and_deactivates_it(api):
    workflow = instantiate(
        api,
        connections={"coreBanking": {"connectionId": connection(api)}},
        files={"crmCustomers": {"filePath": "crm.csv"}},
    ).json()
    created = api.post(
        "/api/templates",
        json={
            "fromWorkflowId": workflow["id"],
            "id": "my-c360",
            "name": "My C360",
            "category": "bfsi",
        },
        headers=H,
    )
    assert created.status_code == 201, created.text
    assert created.json()["isBuiltin"] is False
    assert len(api.get("/api/templates/my-c360", headers=H).json()["jobs"]) == 10
    version = created.json()["version"]
    deactivated = api.patch(
        "/api/templates/my-c360", json={"isActive": False, "version": version}, headers=H
    )
    assert deactivated.status_code == 200, deactivated.text
    assert "my-c360" not in [t["id"] for t in api.get("/api/templates", headers=H).json()["data"]]
    assert api.post("/api/templates/my-c360/instantiate", json={}, headers=H).status_code == 404
    token = api.post("/api/tokens", json={"name": "ed", "role": "editor"}, headers=H).json()[
        "token"
    ]
    editor = {"Authorization": f"Bearer {token}"}
    assert (
        api.post(
            "/api/templates",
            json={"fromWorkflowId": workflow["id"], "id": "x-y", "name": "x", "category": "bfsi"},
            headers=editor,
        ).status_code
        == 403
    )


def test_builtin_templates_upgrade_in_place_when_their_version_rises(api, monkeypatch):
    from flowforge_catalog.templates import builtin

    original = builtin.builtin_templates()
    newer = [
        {**t, "templateVersion": t["templateVersion"] + 1, "description": "v2"} for t in original
    ]
    monkeypatch.setattr(builtin, "builtin_templates", lambda: newer)
    assert builtin.sync(api.app_state.database.engine) == 1
    assert api.get(f"/api/templates/{BFSI}", headers=H).json()["description"] == "v2"
    assert builtin.sync(api.app_state.database.engine) == 0


def test_a_template_file_path_outside_the_landing_area_is_refused(api):
    response = instantiate(
        api,
        connections={"coreBanking": {"connectionId": connection(api)}},
        files={"crmCustomers": {"filePath": "../../etc/passwd"}},
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "files.crmCustomers.filePath" and "'..'" in problem["msg"]
    assert api.get("/api/workflows", headers=H).json()["count"] == 0


CRM_V1 = b"customer_id,name,lifetime_value\n1,Ann,10.50\n"
CRM_V2 = b"customer_id,name,lifetime_value\n1,Ann,10.50\n2,Bob,7.25\n"


def upload(api, content: bytes, name: str = "crm_customers.csv") -> dict:
    response = api.post("/api/files", files={"file": (name, content, "text/csv")}, headers=H)
    assert response.status_code == 201, response.text
    return response.json()


def run_only(api, workflow_id: str, job_id: str) -> dict:
    started = api.post(f"/api/workflows/{workflow_id}/run", json={"jobs": [job_id]}, headers=H)
    assert started.status_code == 202, started.text
    for _ in range(300):
        state = api.get(f"/api/executions/{started.json()['executionId']}", headers=H).json()
        if state["status"] in ("succeeded", "failed"):
            assert state["status"] == "succeeded", state
            return next(job for job in state["jobs"] if job["jobId"] == job_id)
        time.sleep(0.1)
    raise AssertionError(state)


def test_a_file_bound_by_name_follows_the_newest_upload(api):
    first = upload(api, CRM_V1)
    response = instantiate(
        api,
        connections={"coreBanking": {"connectionId": connection(api)}},
        files={"crmCustomers": {"fileName": "crm_customers.csv"}},
    )
    assert response.status_code == 201, response.text
    workflow = response.json()
    crm = next(job for job in workflow["jobs"] if job["name"] == "Ingest CRM Customers")
    file_config = crm["sourceConfig"]["fileConfig"]
    assert file_config["fileName"] == "crm_customers.csv" and "fileId" not in file_config

    ran = run_only(api, workflow["id"], crm["id"])
    assert ran["inputs"][0]["fileId"] == first["id"] and ran["rowsWritten"] == 1

    second = upload(api, CRM_V2)  # a new export under the same name: version 2
    ran = run_only(api, workflow["id"], crm["id"])
    assert ran["inputs"][0]["fileId"] == second["id"]
    assert ran["inputs"][0]["version"] == 2
    assert ran["inputs"][0]["sha256"] == hashlib.sha256(CRM_V2).hexdigest()
    lake = api.app_state.settings.lake_root
    table = pl.read_delta(f"{lake}/bronze/bronze_crm_customers")
    assert sorted(table["name"].to_list()) == ["Ann", "Bob"]


def test_a_file_name_without_an_upload_or_with_a_second_binding_is_refused(api):
    upload(api, CRM_V1)
    bad = {
        "files.crmCustomers.fileName": {"fileName": "nobody.csv"},
        "files.crmCustomers": {"fileName": "crm_customers.csv", "filePath": "crm.csv"},
        "files.crmCustomers.fileVersion": {"filePath": "crm.csv", "fileVersion": 2},
    }
    for field, choice in bad.items():
        response = instantiate(
            api,
            connections={"coreBanking": {"connectionId": connection(api)}},
            files={"crmCustomers": choice},
        )
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["detail"]] == [field], response.text
    pinned = instantiate(
        api,
        connections={"coreBanking": {"connectionId": connection(api)}},
        files={"crmCustomers": {"fileName": "crm_customers.csv", "fileVersion": 9}},
    )
    assert pinned.status_code == 422 and "no version 9" in pinned.text
    assert api.get("/api/workflows", headers=H).json()["count"] == 0

"""Tables other jobs read (issue 12): deleting their writer, deleting its workflow or pointing
it elsewhere is refused with the readers listed unless ?force=true (audited); a job that
reads a table nothing writes, or a derived column over a column its input lacks, is refused
on save with the run's own message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.catalog.factories import csv_job, gold_job, unique_table, workflow
from tests.conftest import ADMIN_TOKEN, make_settings

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def new_workflow(editor) -> dict:
    return editor.post("/api/workflows", json=workflow()).json()


def add_job(editor, wf: dict, job: dict) -> dict:
    response = editor.post(f"/api/workflows/{wf['id']}/jobs", json=job)
    assert response.status_code == 201, response.text
    return response.json()


def test_deleting_a_job_whose_table_is_read_is_refused_unless_forced(admin, editor):
    bronze, gold = unique_table("bronze_read"), unique_table("gold_read")
    wf, other = new_workflow(editor), new_workflow(editor)
    ingest = add_job(editor, wf, csv_job(bronze, "Ingest"))
    reader = add_job(editor, other, gold_job(bronze, gold, "Report"))
    url = f"/api/workflows/{wf['id']}/jobs/{ingest['id']}"
    refused = editor.delete(url)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert f"table '{bronze}' is read by job 'Report' ({reader['id']})" in detail
    assert other["name"] in detail and "?force=true" in detail
    assert editor.get(url).status_code == 200
    # Pointing the writer at another table would leave the reader without its input too.
    moved = editor.patch(
        url,
        json={
            "destinationConfig": {"bronzeConfig": {"tableName": unique_table("b")}},
            "version": 1,
        },
    )
    assert moved.status_code == 409 and "Report" in moved.json()["detail"]
    # So would deleting the writer's workflow.
    gone = editor.delete(f"/api/workflows/{wf['id']}")
    assert gone.status_code == 409 and "Report" in gone.json()["detail"]
    # Forced: deleted, and the audit entry names the readers left behind.
    assert editor.delete(url, params={"force": "true"}).status_code == 204
    entry = admin.get("/api/audit", params={"entityType": "job", "entityId": ingest["id"]}).json()
    forced = entry["data"][0]
    assert forced["action"] == "job.delete"
    assert bronze in forced["diff"]["before"]["forcedOverReaders"]
    assert "Report" in forced["diff"]["before"]["forcedOverReaders"][bronze][0]


def test_a_table_with_another_writer_or_no_outside_reader_is_free_to_go(editor):
    bronze = unique_table("bronze_shared")
    wf = new_workflow(editor)
    first = csv_job(bronze, "A")
    first["destinationConfig"]["bronzeConfig"]["sharedAppend"] = True
    second = csv_job(bronze, "B")
    second["destinationConfig"]["bronzeConfig"]["sharedAppend"] = True
    a = add_job(editor, wf, first)
    add_job(editor, wf, second)
    add_job(editor, new_workflow(editor), gold_job(bronze, unique_table("gold"), "Reader"))
    # B still writes the table the reader reads.
    assert editor.delete(f"/api/workflows/{wf['id']}/jobs/{a['id']}").status_code == 204
    # A workflow whose tables only its own jobs read deletes as before.
    own = new_workflow(editor)
    table = unique_table("bronze_own")
    add_job(editor, own, csv_job(table, "In"))
    add_job(editor, own, gold_job(table, unique_table("gold_own"), "Own report"))
    assert editor.delete(f"/api/workflows/{own['id']}").status_code == 204


def test_forced_workflow_delete_is_audited(admin, editor):
    bronze = unique_table("bronze_wf")
    wf = new_workflow(editor)
    add_job(editor, wf, csv_job(bronze, "Ingest"))
    add_job(editor, new_workflow(editor), gold_job(bronze, unique_table("gold"), "Reader"))
    assert editor.delete(f"/api/workflows/{wf['id']}").status_code == 409
    assert editor.delete(f"/api/workflows/{wf['id']}", params={"force": "true"}).status_code == 204
    log = admin.get("/api/audit", params={"entityType": "workflow", "entityId": wf["id"]})
    entry = log.json()["data"][0]
    assert entry["action"] == "workflow.delete"
    assert bronze in entry["diff"]["before"]["forcedOverReaders"]


MISSING = (
    "input table '{name}' does not exist in bronze, silver or gold: "
    "run the job that writes it first, or fix the table name"
)


def test_reading_a_table_nothing_writes_is_refused_on_save(editor):
    wf = new_workflow(editor)
    ghost = unique_table("bronze_ghost")
    response = editor.post(
        f"/api/workflows/{wf['id']}/jobs", json=gold_job(ghost, unique_table("gold"))
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "sourceConfig", "tables", 0],
            "field": "sourceConfig.tables[0]",
            "msg": MISSING.format(name=ghost),
            "type": "value_error",
        }
    ]
    # A join's table too.
    real = unique_table("bronze_real")
    add_job(editor, wf, csv_job(real, "Real"))
    job = gold_job(real, unique_table("gold"))
    job["transformationConfig"]["joins"] = [{"table": ghost, "on": "customer_id"}]
    response = editor.post(f"/api/workflows/{wf['id']}/jobs", json=job)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "transformationConfig.joins[0].table"
    assert response.json()["detail"][0]["msg"] == MISSING.format(name=ghost)


@pytest.fixture
def api(tmp_path):
    from flowforge.app import create_app

    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        client.settings = settings
        yield client
    app.state.database.dispose()


def run(api, workflow_id: str) -> dict:
    execution = api.post(f"/api/workflows/{workflow_id}/run", headers=H).json()
    for _ in range(300):
        state = api.get(f"/api/executions/{execution['executionId']}", headers=H).json()
        if state["status"] in ("succeeded", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(state)


def test_a_derived_column_over_a_missing_column_is_refused_with_the_runs_message(api):
    landing = Path(api.settings.landing_root)
    (landing / "crm").mkdir(parents=True, exist_ok=True)
    (landing / "crm" / "customers.csv").write_text("customer_id,name\n1,Ann\n2,Bob\n")
    wf = api.post("/api/workflows", json={"name": "derived"}, headers=H).json()
    jobs = f"/api/workflows/{wf['id']}/jobs"
    ingest = api.post(jobs, json=csv_job("bronze_people", "Ingest"), headers=H)
    assert ingest.status_code == 201, ingest.text
    silver = {
        "name": "People",
        "type": "gold-analytics",
        "sourceConfig": {"type": "multi-table", "tables": ["bronze_people"]},
        "destinationConfig": {
            "silverConfig": {"tableName": "silver_people", "primaryKey": "customer_id"}
        },
        "transformationConfig": {
            "derivedColumns": [
                {"name": "shout", "expression": "UPPER(name)"},
                {"name": "greeting", "expression": "CONCAT(shout, ' ', first_name)"},
            ]
        },
    }
    # Before the first run the input's columns are not known: the job is saved ...
    created = api.post(jobs, json=silver, headers=H)
    assert created.status_code == 201, created.text
    # ... and the run says what is wrong.
    state = run(api, wf["id"])
    failed = next(job for job in state["jobs"] if job["jobId"] == created.json()["id"])
    assert failed["status"] == "failed"
    run_message = failed["error"]["message"]
    assert "first_name" in run_message
    # Now the catalog knows bronze_people's columns: the same job is refused on save, with
    # the run's message, naming the expression.
    again = dict(silver, name="People again")
    again["destinationConfig"] = {
        "silverConfig": {"tableName": "silver_people_2", "primaryKey": "customer_id"}
    }
    response = api.post(jobs, json=again, headers=H)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [d["field"] for d in detail] == ["transformationConfig.derivedColumns[1].expression"]
    assert detail[0]["msg"] in run_message
    # Columns of the input (and earlier derived columns) are fine.
    again["transformationConfig"] = {
        "derivedColumns": [
            {"name": "shout", "expression": "UPPER(name)"},
            {"name": "greeting", "expression": "CONCAT(shout, ' ', _source)"},
        ],
        "filters": ["customer_id > 0"],
    }
    assert api.post(jobs, json=again, headers=H).status_code == 201

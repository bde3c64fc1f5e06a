"""A table has one owner job (issue 12): a second writer is refused at save unless every
writer declares the bronze table shared-append; clones write tables of their own."""

from __future__ import annotations

import uuid

import pytest

from tests.catalog.factories import csv_job, gold_job, workflow


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def new_workflow(editor, name: str | None = None) -> dict:
    body = workflow(name=name) if name else workflow()
    response = editor.post("/api/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def add_job(editor, wf: dict, job: dict):
    return editor.post(f"/api/workflows/{wf['id']}/jobs", json=job)


def test_a_second_writer_in_another_workflow_is_refused_naming_the_owner(editor):
    table = unique("bronze_owned")
    first_wf, second_wf = new_workflow(editor), new_workflow(editor)
    owner = add_job(editor, first_wf, csv_job(table, "Owner"))
    assert owner.status_code == 201, owner.text
    refused = add_job(editor, second_wf, csv_job(table, "Intruder"))
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert f"table '{table}' is already written by job 'Owner'" in detail
    assert owner.json()["id"] in detail and first_wf["name"] in detail
    assert "sharedAppend" in detail
    # In the same workflow too, and through a PATCH that points a job at the table.
    assert add_job(editor, first_wf, csv_job(table, "Twin")).status_code == 409
    other = add_job(editor, second_wf, csv_job(unique("bronze_other"), "Other")).json()
    moved = editor.patch(
        f"/api/workflows/{second_wf['id']}/jobs/{other['id']}",
        json={"destinationConfig": {"bronzeConfig": {"tableName": table}}, "version": 1},
    )
    assert moved.status_code == 409
    # A silver or gold table of the same name is the same table (names are lake-wide).
    gold = gold_job(unique("bronze_in"), table)
    add_job(editor, second_wf, csv_job(gold["sourceConfig"]["tables"][0], "In"))
    assert add_job(editor, second_wf, gold).status_code == 409
    # The owner itself can be saved again unchanged.
    same = editor.patch(
        f"/api/workflows/{first_wf['id']}/jobs/{owner.json()['id']}",
        json={"description": "still mine", "version": 1},
    )
    assert same.status_code == 200, same.text


def test_shared_append_needs_every_writer_to_declare_it(editor):
    table = unique("bronze_shared")
    wf_a, wf_b = new_workflow(editor), new_workflow(editor)
    plain = csv_job(table, "Plain")
    assert add_job(editor, wf_a, plain).status_code == 201
    shared = csv_job(table, "Shared")
    shared["destinationConfig"]["bronzeConfig"]["sharedAppend"] = True
    # The owner did not declare it: still refused.
    assert add_job(editor, wf_b, shared).status_code == 409

    table = unique("bronze_shared")
    first = csv_job(table, "Branch A")
    first["destinationConfig"]["bronzeConfig"]["sharedAppend"] = True
    second = csv_job(table, "Branch B")
    second["destinationConfig"]["bronzeConfig"]["sharedAppend"] = True
    assert add_job(editor, wf_a, first).status_code == 201
    created = add_job(editor, wf_b, second)
    assert created.status_code == 201, created.text
    assert created.json()["destinationConfig"]["bronzeConfig"]["sharedAppend"] is True
    # Overwriting a shared table is not appending to it.
    overwrite = csv_job(unique("bronze_x"), "Overwrite")
    overwrite["destinationConfig"]["bronzeConfig"].update(sharedAppend=True, writeMode="overwrite")
    refused = add_job(editor, wf_a, overwrite)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "destinationConfig.bronzeConfig.sharedAppend"


def test_cloning_a_workflow_gives_its_tables_new_names(editor):
    source_wf = new_workflow(editor, unique("Risk Pipeline"))
    bronze, gold_table = unique("bronze_c"), unique("gold_c")
    ingest = add_job(editor, source_wf, csv_job(bronze, "Ingest")).json()
    add_job(editor, source_wf, gold_job(bronze, gold_table))
    response = editor.post(f"/api/workflows/{source_wf['id']}/clone", json={"name": "Risk EU Copy"})
    assert response.status_code == 201, response.text
    clone = response.json()
    assert clone["tableNames"] == {
        bronze: f"{bronze}_risk_eu_copy",
        gold_table: f"{gold_table}_risk_eu_copy",
    }
    jobs = editor.get(f"/api/workflows/{clone['id']}/jobs").json()["data"]
    ingest_copy, gold_copy = jobs
    assert ingest_copy["destinationConfig"]["bronzeConfig"]["tableName"] == f"{bronze}_risk_eu_copy"
    assert gold_copy["sourceConfig"]["tables"] == [f"{bronze}_risk_eu_copy"]
    assert gold_copy["destinationConfig"]["goldConfig"]["tableName"] == f"{gold_table}_risk_eu_copy"
    # The original still owns its tables, unchanged.
    original = editor.get(f"/api/workflows/{source_wf['id']}/jobs/{ingest['id']}").json()
    assert original["destinationConfig"]["bronzeConfig"]["tableName"] == bronze
    # A second clone of the same name pattern gets numbered names; chosen names are honoured.
    again = editor.post(
        f"/api/workflows/{source_wf['id']}/clone",
        json={"name": "Risk EU copy!", "tableNames": {gold_table: unique("gold_mine")}},
    ).json()
    assert again["tableNames"][bronze] == f"{bronze}_risk_eu_copy_2"
    assert again["tableNames"][gold_table].startswith("gold_mine_")
    taken = editor.post(
        f"/api/workflows/{source_wf['id']}/clone", json={"tableNames": {bronze: gold_table}}
    )
    assert taken.status_code == 409 and gold_table in taken.json()["detail"]


def test_cloning_a_job_gives_the_copy_its_own_table(editor):
    wf = new_workflow(editor)
    table = unique("bronze_j")
    job = add_job(editor, wf, csv_job(table, "Ingest")).json()
    copy = editor.post(f"/api/workflows/{wf['id']}/jobs/{job['id']}/clone")
    assert copy.status_code == 201, copy.text
    assert copy.json()["destinationConfig"]["bronzeConfig"]["tableName"] == f"{table}_copy"
    chosen = unique("bronze_chosen")
    named = editor.post(
        f"/api/workflows/{wf['id']}/jobs/{job['id']}/clone", json={"tableName": chosen}
    )
    assert named.json()["destinationConfig"]["bronzeConfig"]["tableName"] == chosen
    assert (
        editor.post(
            f"/api/workflows/{wf['id']}/jobs/{job['id']}/clone", json={"tableName": chosen}
        ).status_code
        == 409
    )


@pytest.mark.parametrize("rename", [False, True])
def test_a_template_installed_twice_is_refused_unless_its_tables_are_renamed(admin, rename):
    connection = admin.post(
        "/api/connections",
        json={
            "name": unique("core"),
            "type": "sql-server",
            "host": "127.0.0.1",
            "database": "CoreBanking",
            "username": "etl",
            "password": "pw",
        },
    ).json()["id"]

    def install(name, table_names=None):
        return admin.post(
            "/api/templates/bfsi-customer-360/instantiate",
            json={
                "workflowName": name,
                "connections": {"coreBanking": {"connectionId": connection}},
                "files": {"crmCustomers": {"filePath": "crm.csv"}},
                "tableNames": table_names or {},
            },
        )

    detail = admin.get("/api/templates/bfsi-customer-360").json()
    tables = [job["writes"] for job in detail["jobs"]]
    suffix = uuid.uuid4().hex[:6]
    first = install(unique("C360"), {t: f"{t}_{suffix}" for t in tables})
    assert first.status_code == 201, first.text
    workflows_before = admin.get("/api/workflows").json()["count"]
    names = {t: f"{t}_{suffix}_b" for t in tables} if rename else None
    if not rename:
        names = {t: f"{t}_{suffix}" for t in tables}
    second = install(unique("C360"), names)
    if rename:
        assert second.status_code == 201, second.text
    else:
        assert second.status_code == 409, second.text
        assert "already written by job 'Ingest Core Banking Customers'" in second.json()["detail"]
        assert "tableNames" in second.json()["detail"]
        assert admin.get("/api/workflows").json()["count"] == workflows_before

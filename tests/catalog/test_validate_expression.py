"""POST /api/validate/expression: one derived column or filter checked as a job's save checks
it, so the web UI can say what is wrong while it is typed. Never a 500."""

import pytest

from tests.catalog.factories import workflow

URL = "/api/validate/expression"


def test_a_good_expression_is_valid_and_names_the_columns_it_reads(editor):
    answer = editor.post(URL, json={"expression": "CONCAT(first_name, ' ', UPPER(last_name))"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"valid": True, "columns": ["first_name", "last_name"]}


def test_known_columns_refuse_an_unknown_one_as_a_run_would(editor):
    good = editor.post(URL, json={"expression": "amount * 2", "columns": ["amount", "id"]})
    assert good.status_code == 200, good.text
    bad = editor.post(URL, json={"expression": "amount * rate", "columns": ["amount", "id"]})
    assert bad.status_code == 422
    [problem] = bad.json()["detail"]
    assert problem["field"] == "expression"
    assert "unknown column rate" in problem["msg"]


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("LOWER(", "LOWER("),
        ("(SELECT 1)", "subqueries"),
        ("read_csv('/etc/passwd')", "read_csv"),
        ("amount AS total", "AS"),
        ("x" * 4001, "4000"),
        ("", "at least 1"),
    ],
)
def test_a_bad_expression_is_a_422_naming_expression_in_words(editor, expression, words):
    answer = editor.post(URL, json={"expression": expression})
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"][-1] == "expression"
    assert words.lower() in problem["msg"].lower()


def test_the_message_is_the_one_a_job_save_gives(editor):
    """Same validator: the job's 422 for the expression carries the same message."""
    expression = "(SELECT 1)"
    checked = editor.post(URL, json={"expression": expression}).json()["detail"][0]["msg"]
    wf = editor.post("/api/workflows", json=workflow()).json()
    job = {
        "name": "derived",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "a.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_validate_same"}},
        "transformationConfig": {"derivedColumns": [{"name": "d", "expression": expression}]},
    }
    saved = editor.post(f"/api/workflows/{wf['id']}/jobs", json=job)
    assert saved.status_code == 422, saved.text
    problems = {p["field"]: p["msg"] for p in saved.json()["detail"]}
    assert problems["transformationConfig.derivedColumns[0].expression"] == checked


def test_a_viewer_cannot_use_it_and_nothing_odd_is_a_500(viewer, editor):
    assert viewer.post(URL, json={"expression": "1"}).status_code == 403
    for body in ({}, {"expression": 3}, {"expression": "1", "columns": "x"}, {"other": 1}):
        assert editor.post(URL, json=body).status_code == 422

"""Values no database can store (NUL, lone surrogates, integers beyond 64 bits, infinite
numbers) are refused with a 422 naming where they are, on every route and on both catalog
databases, and nothing is saved."""

import pytest

from tests.catalog.factories import csv_job, unique_table, workflow

JSON = {"content-type": "application/json"}


def raw(api, method: str, url: str, body: str):
    """Send ``body`` exactly as written: json.dumps cannot write 1e309 or a lone surrogate."""
    return getattr(api, method)(url, content=body.encode("utf-8"), headers=JSON)


def fields_of(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [item["field"] for item in response.json()["detail"]]


def test_nul_in_text_is_refused_naming_the_field(editor):
    name = workflow()["name"]
    response = raw(editor, "post", "/api/workflows", f'{{"name": "{name}", "team": "r\\u0000k"}}')
    assert fields_of(response) == ["team"]
    assert "NUL" in response.json()["detail"][0]["msg"]
    assert editor.get("/api/workflows", params={"q": name}).json()["count"] == 0


def test_a_proper_surrogate_pair_is_ordinary_text(editor):
    name = workflow()["name"]
    response = raw(
        editor, "post", "/api/workflows", f'{{"name": "{name}", "team": "\\ud83d\\ude00"}}'
    )
    assert response.status_code == 201, response.text
    assert response.json()["team"] == "\U0001f600"


@pytest.fixture
def procedure_job(editor):
    """A workflow and a stored-procedure job body whose one parameter is ``VALUE``."""
    created = editor.post("/api/workflows", json=workflow()).json()
    connection = editor.post(
        "/api/connections",
        json={"name": workflow()["name"], "type": "postgresql", "host": "127.0.0.1"},
    ).json()
    body = (
        '{"name": "j", "type": "database", "sourceConfig": {"type": "postgresql", '
        f'"databaseConfig": {{"connectionId": "{connection["id"]}", "storedProcedure": "p", '
        '"parameters": {"since": VALUE}}}, '
        '"destinationConfig": {"bronzeConfig": {"tableName": "TABLE"}}}'
    ).replace("TABLE", unique_table("bronze_p"))
    return f"/api/workflows/{created['id']}/jobs", body


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('"\\ud800"', "surrogate"),  # was a 500: the response could not be encoded
        ('"\\udfff x"', "surrogate"),
        ("1e309", "finite"),  # was saved as null: the value silently lost
        ("-1e400", "finite"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("9223372036854775808", "64-bit"),
    ],
)
def test_parameter_values_that_cannot_be_kept_are_refused(editor, procedure_job, value, words):
    url, body = procedure_job
    response = raw(editor, "post", url, body.replace("VALUE", value))
    assert fields_of(response) == ["sourceConfig.databaseConfig.parameters.since"]
    assert words in response.json()["detail"][0]["msg"]
    assert editor.get(url).json()["count"] == 0
    kept = raw(editor, "post", url, body.replace("VALUE", "1.5e308"))
    assert kept.status_code == 201, kept.text
    assert kept.json()["sourceConfig"]["databaseConfig"]["parameters"] == {"since": 1.5e308}


@pytest.mark.parametrize("number", ["9223372036854775808", "-9223372036854775809", "1" + "0" * 400])
def test_integers_beyond_64_bits_are_refused(editor, number):
    created = editor.post("/api/workflows", json=workflow()).json()
    url = f"/api/workflows/{created['id']}"
    response = raw(editor, "patch", url, f'{{"description": "x", "version": {number}}}')
    assert fields_of(response) == ["version"]
    assert "64-bit" in response.json()["detail"][0]["msg"]
    assert editor.get(url).json()["version"] == 1


def test_nested_values_are_named_by_their_path(editor):
    created = editor.post("/api/workflows", json=workflow()).json()
    job = csv_job()
    job["sourceConfig"]["fileConfig"]["nullValues"] = ["NA", "nul\x00"]
    response = editor.post(f"/api/workflows/{created['id']}/jobs", json=job)
    assert fields_of(response) == ["sourceConfig.fileConfig.nullValues[1]"]
    assert editor.get(f"/api/workflows/{created['id']}/jobs").json()["count"] == 0


def test_path_and_query_values_are_checked_too(viewer):
    assert fields_of(viewer.get("/api/workflows/abc%00def")) == ["workflow_id"]
    assert fields_of(viewer.get("/api/workflows", params={"q": "a\x00b"})) == ["q"]
    assert viewer.get("/api/workflows/abc-def").status_code == 404

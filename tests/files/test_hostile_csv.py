"""Files that used to load silently wrong or answer 500 (issue 10, "Silently wrong bronze
tables", and the preview 500s), through the real API of the embedded app: upload, schema,
preview, then a job made from the upload, run end to end, its bronze table read back."""

from __future__ import annotations

import time

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api(tmp_path):
    from flowforge.app import create_app

    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        client.settings = settings
        yield client
    app.state.database.dispose()


def upload(api, content: bytes) -> str:
    response = api.post("/api/files", files={"file": ("data.csv", content, "text/csv")}, headers=H)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def schema(api, file_id: str) -> dict:
    response = api.get(f"/api/files/{file_id}/schema", headers=H)
    assert response.status_code == 200, response.text
    return response.json()


def preview(api, file_id: str, rows: int = 20) -> dict:
    response = api.get(f"/api/files/{file_id}/preview", params={"rows": rows}, headers=H)
    assert response.status_code == 200, response.text
    return response.json()


def load(api, file_id: str, malformed_rows: str = "quarantine") -> tuple[dict, list, list]:
    """Run a job made from the upload (its detected fileConfig) into bronze_t; returns the
    ingest job's state, the bronze rows (audit columns dropped) and the quarantined rows."""
    workflow = api.post("/api/workflows", json={"name": f"w-{file_id}"}, headers=H).json()
    job = {
        "name": "Ingest",
        "type": "file-based",
        "sourceConfig": {
            "type": "csv",
            "fileConfig": {"fileId": file_id, "malformedRows": malformed_rows},
        },
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_t"}},
    }
    created = api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H)
    assert created.status_code == 201, created.text
    execution = api.post(f"/api/workflows/{workflow['id']}/run", headers=H).json()
    for _ in range(300):
        state = api.get(f"/api/executions/{execution['executionId']}", headers=H).json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    [ingest] = state["jobs"]
    lake = api.settings.lake_root
    try:
        bronze = pl.read_delta(f"{lake}/bronze/bronze_t")
        rows = bronze.select(
            c for c in bronze.columns if c != "_source_row" and not c.startswith("_")
        ).rows()
    except Exception:  # noqa: BLE001 - no table: nothing was loaded
        rows = []
    try:
        quarantine = pl.read_delta(f"{lake}/bronze/bronze_t__quarantine")
        quarantined = quarantine.select("source_row", "raw_line", "reason").rows()
    except Exception:  # noqa: BLE001
        quarantined = []
    return ingest, rows, quarantined


# --------------------------------------------------------------------------- 1. a stray quote


UNBALANCED = b'id,name\n1,"abc\n2,def\n3,ghi\n'


def test_a_quote_that_never_closes_costs_its_row_not_the_rest_of_the_file(api):
    file_id = upload(api, UNBALANCED)
    detected = schema(api, file_id)
    assert detected["hasHeader"] is True
    assert any("row 1" in w and "never closes" in w for w in detected["warnings"])
    shown = preview(api, file_id)
    assert shown["rows"] == [{"id": "2", "name": "def"}, {"id": "3", "name": "ghi"}]
    assert any("row 1" in w and "never closes" in w for w in shown["warnings"])

    ingest, rows, quarantined = load(api, file_id)
    assert ingest["status"] == "succeeded", ingest
    assert set(rows) == {(2, "def"), (3, "ghi")}
    [(source_row, raw_line, reason)] = quarantined
    assert (source_row, raw_line) == (1, '1,"abc')
    assert "never closes" in reason


def test_a_quote_that_never_closes_fails_the_load_naming_the_row(api):
    ingest, rows, _ = load(api, upload(api, UNBALANCED), malformed_rows="fail")
    assert ingest["status"] == "failed"
    message = ingest["error"]["message"]
    assert "row 1 after the header" in message and "never closes" in message
    assert rows == []


# --------------------------------------------------------------------------- 2. mixed encodings


MIXED = "id,name\n1,José\n2,Zoë\n".encode() + b"3,Caf\xe9\n" + "4,Kraków\n".encode()


def test_a_utf8_file_with_one_cp1252_row_stays_utf8_and_sets_that_row_aside(api):
    file_id = upload(api, MIXED)
    detected = schema(api, file_id)
    assert detected["encoding"] == "utf-8"
    assert any("not valid UTF-8" in w for w in detected["warnings"])
    assert any("row 3" in w and "not valid utf-8" in w for w in detected["warnings"])
    shown = preview(api, file_id)
    assert [row["name"] for row in shown["rows"]] == ["José", "Zoë", "Caf\ufffd", "Kraków"]
    assert any("row 3" in w for w in shown["warnings"])

    ingest, rows, quarantined = load(api, file_id)
    assert ingest["status"] == "succeeded", ingest
    assert set(rows) == {(1, "José"), (2, "Zoë"), (4, "Kraków")}  # no mojibake
    [(source_row, raw_line, reason)] = quarantined
    assert (source_row, raw_line) == (3, "3,Caf\ufffd")
    assert "not valid utf-8" in reason and "'name'" in reason


# --------------------------------------------------------------------------- 3. repeated names


def test_a_header_that_repeats_a_name_is_a_header_and_the_repeat_gets_a_suffix(api):
    file_id = upload(api, b"id,name,name\n1,a,b\n2,c,d\n")
    detected = schema(api, file_id)
    assert detected["hasHeader"] is True
    assert [c["name"] for c in detected["columns"]] == ["id", "name", "name_2"]
    assert any("'name_2'" in w for w in detected["warnings"])
    shown = preview(api, file_id)
    assert shown["columns"] == ["id", "name", "name_2"]
    assert shown["rows"] == [
        {"id": "1", "name": "a", "name_2": "b"},
        {"id": "2", "name": "c", "name_2": "d"},
    ]

    ingest, rows, quarantined = load(api, file_id, malformed_rows="fail")
    assert ingest["status"] == "succeeded", ingest
    assert set(rows) == {(1, "a", "b"), (2, "c", "d")}  # the header is not a row
    assert quarantined == []


# --------------------------------------------------------------------------- 4. one huge line


def test_a_header_and_one_50_mb_line_is_a_clear_answer_not_a_500(api, tmp_path):
    api.settings.upload_max_bytes = 64 << 20
    content = b"id,name\n" + b"x" * (50 << 20) + b"\n"
    file_id = upload(api, content)
    detected = schema(api, file_id)
    assert detected["hasHeader"] is True
    assert "the file has a header and no data rows" not in detected["warnings"]
    assert any("row 1" in w and "longer than 1 MiB" in w for w in detected["warnings"])
    shown = preview(api, file_id)
    assert shown["rows"] == []
    assert any("row 1" in w and "longer than 1 MiB" in w for w in shown["warnings"])

    ingest, rows, quarantined = load(api, file_id)
    assert ingest["status"] == "succeeded", ingest
    assert rows == []
    [(source_row, raw_line, reason)] = quarantined
    assert source_row == 1 and "longer than 1 MiB" in reason
    assert len(raw_line) == 50 << 20  # kept whole: nothing is silently cut


# --------------------------------------------------------------------------- 5. a big field


def test_a_field_over_128_kb_previews_and_loads_whole(api):
    big = "y" * 200_000
    content = f'id,note\n1,short\n2,{big}\n3,"quoted, {big}"\n4,end\n'.encode()
    file_id = upload(api, content)
    detected = schema(api, file_id)
    assert [c["name"] for c in detected["columns"]] == ["id", "note"]
    shown = preview(api, file_id)
    assert [row["note"] for row in shown["rows"]] == ["short", big, f"quoted, {big}", "end"]
    assert shown["warnings"] == []

    ingest, rows, quarantined = load(api, file_id, malformed_rows="fail")
    assert ingest["status"] == "succeeded", ingest
    assert set(rows) == {(1, "short"), (2, big), (3, f"quoted, {big}"), (4, "end")}
    assert quarantined == []


def test_a_big_field_past_the_sampled_head_previews_instead_of_a_500(api):
    # Detection's head (1 MiB of a 4 MiB sample) ends before row 800; a 1,000-row preview
    # reads past it, into the 200 kB field.
    api.settings.upload_max_bytes = 16 << 20
    big = "z" * 200_000
    lines = [f"{i},{'p' * 1400}" for i in range(1, 800)] + [f"800,{big}"]
    lines += [f"{i},{'q' * 1400}" for i in range(801, 4000)]
    file_id = upload(api, ("id,note\n" + "\n".join(lines) + "\n").encode())
    schema(api, file_id)
    shown = preview(api, file_id, rows=1000)
    assert len(shown["rows"]) == 1000
    assert shown["rows"][799] == {"id": "800", "note": big}

"""Issue 12, detection: what a user sees after an upload (GET /api/files/{id}/schema)."""

from __future__ import annotations

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
        yield client
    app.state.database.dispose()


def detect(api, content: bytes, name: str = "data.csv") -> dict:
    uploaded = api.post("/api/files", files={"file": (name, content, "text/csv")}, headers=H)
    assert uploaded.status_code == 201, uploaded.text
    response = api.get(f"/api/files/{uploaded.json()['id']}/schema", headers=H)
    assert response.status_code == 200, response.text
    return response.json()


def column(detection: dict, name: str) -> dict:
    return next(c for c in detection["columns"] if c["name"] == name)


def test_a_timestamp_column_with_an_impossible_day_is_not_detected_as_a_timestamp(api):
    rows = [f"{i},{day:02d}/01/2024 10:00" for i, day in enumerate(range(13, 29), start=1)]
    rows.append("99,31/02/2024 10:00")
    detection = detect(api, ("id,at\n" + "\n".join(rows) + "\n").encode())
    assert column(detection, "at")["type"] == "string"


def test_the_schema_says_how_empty_fields_load(api):
    detection = detect(api, b'id,name\n1,""\n2,\n3,x\n')
    assert detection["emptyFields"] == {
        "unquoted": "null",
        "quotedInStringColumns": "empty-string",
        "quotedInOtherColumns": "null",
        "nullValuesApplyToQuotedValues": True,
    }

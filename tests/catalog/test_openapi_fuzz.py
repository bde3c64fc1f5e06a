"""Schemathesis generates requests from our OpenAPI document; no request may end in a 5xx.

Two passes over every operation:

1. schemathesis' own requests (valid and invalid shapes) on the embedded SQLite catalog;
2. the same requests with hostile values put into the body, the query and the path: text
   holding NUL or a lone UTF-16 surrogate, a megabyte on one line, integers beyond int64, and
   ``1e309``, ``-1e400``, ``NaN``, ``Infinity`` written as raw JSON (``json.dumps`` cannot
   write them) — on a PostgreSQL catalog, where NUL and long indexed text fail (SQLite
   stores both without a word).

The app is built at import time (schemathesis' fixture loader does not work with pytest 9),
in a temporary data dir of its own, on the embedded SQLite database; the second pass sends
the same cases to a PostgreSQL-backed app of its own database, made by a fixture. Both are
served without their lifespan (see ``requests_only``); the fixture closes what the app's
shutdown would."""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from flowforge.app import create_app
from tests.conftest import ADMIN_TOKEN, PG_HOST, PG_PORT, make_settings, require_service


def requests_only(target):
    """The app without its lifespan: schemathesis ends an app's lifespan after every test
    item, which would close the job and database-operation pools the next items use."""

    async def serve(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await target(scope, receive, send)

    return serve


app = create_app(make_settings(Path(tempfile.mkdtemp(prefix="flowforge-fuzz-"))))
schema = schemathesis.openapi.from_asgi("/api/openapi.json", requests_only(app))
# The hostile pass starts from well-formed requests (schemathesis' negative ones drop the
# token or the body, and never reach a route with the hostile values in them).
well_formed = schemathesis.openapi.from_asgi("/api/openapi.json", requests_only(app))
well_formed.config.generation.update(modes=["positive"])
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

MEGABYTE_LINE = "x" * 1_000_000
HOSTILE_TEXT = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfffy",
        "\ud83d",  # the first half of an emoji's surrogate pair, alone
        MEGABYTE_LINE,
        MEGABYTE_LINE + "\x00",
        "é" * 500_000,
    ]
)
RAW = "\x01raw:"  # marks a value written into the JSON text as it is
HOSTILE_NUMBERS = st.sampled_from(
    [2**63, -(2**63) - 1, 10**40, f"{RAW}1e309", f"{RAW}-1e400", f"{RAW}NaN", f"{RAW}Infinity"]
)
# Path and query values travel as URL text: no surrogates (no URL can carry one).
HOSTILE_URL_TEXT = st.sampled_from(
    ["\x00", "a\x00b", MEGABYTE_LINE, "9223372036854775808", "1e309", "-1e400", "NaN"]
)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_ends_in_a_server_error(case):
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (case.method, case.path, response.text)


@pytest.fixture(scope="module")
def postgres_app(tmp_path_factory):
    """The app on a PostgreSQL catalog database of its own, dropped afterwards."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    name = f"flowforge_fuzz_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    on_postgres = create_app(make_settings(tmp_path_factory.mktemp("fuzz-pg"), url))
    on_postgres.state.fuzz_ids = _existing_resources(on_postgres)
    on_postgres.state.requests_only = requests_only(on_postgres)  # one object: one lifespan key
    yield on_postgres
    on_postgres.state.runtime.close()
    on_postgres.state.operations.close()
    on_postgres.state.database.dispose()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@well_formed.parametrize()
@well_formed.given(data=st.data())
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_values_never_end_in_a_server_error(case, data, postgres_app):
    changed = _put_hostile_values(case, data, postgres_app.state.fuzz_ids)
    response = case.call(app=postgres_app.state.requests_only, headers=AUTH)
    assert response.status_code < 500, (case.method, case.path, changed, response.text[:2000])


def _existing_resources(target) -> dict[str, str]:
    """A workflow, a job and a connection, so that hostile bodies also reach routes that
    change something (random ids mostly end in a 404)."""
    from fastapi.testclient import TestClient

    client = TestClient(target)
    workflow = client.post("/api/workflows", json={"name": "fuzz"}, headers=AUTH).json()
    job = {
        "name": "fuzz",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "fuzz.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_fuzz"}},
    }
    job = client.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=AUTH).json()
    connection = client.post(
        "/api/connections",
        json={"name": "fuzz", "type": "sqlite", "database": "fuzz.db"},
        headers=AUTH,
    ).json()
    return {"workflow_id": workflow["id"], "job_id": job["id"], "connection_id": connection["id"]}


def _put_hostile_values(case, data, existing: dict[str, str]) -> list[str]:
    """Replace some leaves of the case's body, query and path with hostile values; the body
    is then sent as JSON text written here. Returns what was changed, for the report."""
    changed: list[str] = []
    if case.method != "DELETE" and data.draw(st.booleans(), label="existing resources"):
        for name in case.path_parameters or {}:
            if name in existing:
                case.path_parameters[name] = existing[name]
    for where, values, strategy in (
        ("path", case.path_parameters, HOSTILE_URL_TEXT),
        ("query", case.query, HOSTILE_URL_TEXT),
    ):
        for name in sorted(values or {}):
            if data.draw(st.booleans(), label=f"{where}.{name}"):
                values[name] = data.draw(strategy)
                changed.append(f"{where}.{name}")
    if isinstance(case.body, dict | list):
        slots = list(_slots(case.body))
        chosen = [slot for slot in slots if data.draw(st.booleans())]
        if slots and not chosen and not changed:
            chosen = [data.draw(st.sampled_from(slots))]
        for container, key, value in chosen:
            strategy = HOSTILE_TEXT if isinstance(value, str) else HOSTILE_NUMBERS
            container[key] = data.draw(strategy)
            changed.append(f"body[{key!r}]")
        case.body = _json_text(case.body)
        case.headers = {**(case.headers or {}), "Content-Type": "application/json"}
    return changed


def _slots(document: Any):
    """(container, key, value) for every string or number in a JSON document."""
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in list(items):
        if isinstance(value, dict | list):
            yield from _slots(value)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            yield document, key, value


def _json_text(document: Any) -> bytes:
    text = json.dumps(document)  # ASCII: lone surrogates become \ud800 escapes
    raw = json.dumps(RAW)[1:-1]
    return re.sub(rf'"{re.escape(raw)}([^"]*)"', r"\1", text).encode("ascii")

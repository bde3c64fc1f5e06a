"""Error texts never reveal a password, not even by where stars stand: masking every
occurrence of ``e`` turned "the PostgreSQL server" into "th*** Postgr***SQL s***rv***r", which
spells the password. Against the real PostgreSQL and MariaDB: what a user sees of a failed
login is the same whatever the password is, and carries no star glued to a word."""

from __future__ import annotations

import re
import uuid

import pytest

from flowforge_ingest.connectors.registry import WITHHELD
from tests.conftest import ADMIN_TOKEN, require_service
from tests.connections.conftest import wait

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LONG = "Canary;Pa}ss=w0rd{"  # one of conftest's SECRET_CANARIES: the session checks it too
PASSWORDS = ["e", "a", "Postgres", "1", LONG]
UNRELATED = "zq-Unrelated-9x"
STAR_IN_A_WORD = re.compile(r"\w\*|\*\w")

# Logins that fail on these servers: PostgreSQL here trusts local logins, so the user is
# unknown; MariaDB's root has no password, so any password is wrong.
FAILING = {
    "postgresql": {
        "host": "127.0.0.1",
        "port": 5432,
        "database": "postgres",
        "username": "nobody_here",
    },
    "mysql": {"host": "127.0.0.1", "port": 3306, "database": "mysql", "username": "root"},
}
PORTS = {"postgresql": 5432, "mysql": 3306}


def tried(api, db_type: str, password: str) -> dict:
    connection = {"type": db_type, **FAILING[db_type], "password": password}
    response = api.post("/api/test-connection/database", json={"connection": connection}, headers=H)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("db_type", ["postgresql", "mysql"])
@pytest.mark.parametrize("password", PASSWORDS)
def test_a_failed_login_says_the_same_whatever_the_password(api, db_type, password):
    require_service(db_type, "127.0.0.1", PORTS[db_type])
    answer = tried(api, db_type, password)
    assert answer["success"] is False and answer["kind"] == "login", answer
    assert not STAR_IN_A_WORD.search(answer["message"]), answer["message"]
    assert answer == tried(api, db_type, UNRELATED)
    if len(password) >= 8:
        assert password not in str(answer)


@pytest.mark.parametrize("password", ["e", "Postgres", LONG])
def test_a_failed_job_shows_no_part_of_the_password(api, password):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    saved = api.post(
        "/api/connections",
        json={
            "name": f"pg-{uuid.uuid4().hex[:6]}",
            "type": "postgresql",
            **FAILING["postgresql"],
            "password": password,
        },
        headers=H,
    ).json()
    workflow = api.post("/api/workflows", json={"name": f"w-{uuid.uuid4().hex[:6]}"}, headers=H)
    job = {
        "name": "Ingest",
        "type": "database",
        "sourceConfig": {
            "type": "postgresql",
            "databaseConfig": {"connectionId": saved["id"], "tableName": "t"},
        },
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_t"}},
    }
    url = f"/api/workflows/{workflow.json()['id']}"
    assert api.post(f"{url}/jobs", json=job, headers=H).status_code == 201
    started = api.post(f"{url}/run", headers=H)
    execution = wait(api, started.json()["executionId"])
    error = execution["jobs"][0]["error"]
    assert execution["status"] == "failed" and "rejected the login" in error["message"]
    for text in (error["message"], error["detail"] or ""):
        assert not STAR_IN_A_WORD.search(text), text
    if len(password) >= 8:
        assert password not in str(execution)
    if password == "e":  # in every driver sentence: the driver's text is withheld
        assert error["detail"] == WITHHELD

"""Failure messages say what happened, against the real PostgreSQL, MariaDB and Redis here:
another service on the port is "not a PostgreSQL server" (it used to be "the host name does
not resolve"), and a table that does not exist is a 422 naming the table (it used to be a 502
"could not connect")."""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.conftest import ADMIN_TOKEN, require_service

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERVERS = {
    "postgresql": ("PostgreSQL", 5432, {"database": "postgres", "username": "postgres"}),
    "mysql": ("MySQL/MariaDB", 3306, {"database": "mysql", "username": "root"}),
}


@pytest.fixture(scope="module")
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_connection(api, db_type: str, port: int) -> dict:
    connection = {
        "type": db_type,
        "host": "127.0.0.1",
        "port": port,
        **SERVERS[db_type][2],
        "options": {"connectTimeout": 2},
    }
    response = api.post("/api/test-connection/database", json={"connection": connection}, headers=H)
    assert response.status_code == 200, response.text
    return response.json()


test_connection.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("db_type", ["postgresql", "mysql"])
@pytest.mark.parametrize("other", ["redis", "http"])
def test_another_service_on_the_port_is_named_as_such(api, http_port, db_type, other):
    if other == "redis":
        require_service("Redis", "127.0.0.1", 6379)
    port = 6379 if other == "redis" else http_port
    answer = test_connection(api, db_type, port)
    name = SERVERS[db_type][0]
    assert answer["success"] is False and answer["kind"] == "protocol", answer
    assert answer["message"].startswith(
        f"something answered on 127.0.0.1:{port}, but it is not a {name} server"
    ), answer["message"]
    assert "resolve" not in answer["message"]


@pytest.mark.parametrize("db_type", ["postgresql", "mysql"])
def test_the_real_server_still_connects(api, db_type):
    require_service(db_type, "127.0.0.1", SERVERS[db_type][1])
    answer = test_connection(api, db_type, SERVERS[db_type][1])
    assert answer["success"] is True, answer


@pytest.fixture
def saved(api):
    def save(db_type: str) -> str:
        require_service(db_type, "127.0.0.1", SERVERS[db_type][1])
        body = {
            "name": f"live {db_type}",
            "type": db_type,
            "host": "127.0.0.1",
            "port": SERVERS[db_type][1],
            **SERVERS[db_type][2],
        }
        response = api.post("/api/connections", json=body, headers=H)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return save


@pytest.mark.parametrize("operation", ["preview", "schema"])
@pytest.mark.parametrize(("db_type", "schema"), [("postgresql", "public"), ("mysql", "mysql")])
def test_a_missing_table_is_a_422_naming_it(api, saved, operation, db_type, schema):
    connection_id = saved(db_type)
    response = api.get(
        f"/api/database/{operation}",
        params={"connectionId": connection_id, "schema": schema, "table": "no_such_table_x"},
        headers=H,
    )
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "table"] and problem["field"] == "table"
    assert "'no_such_table_x'" in problem["msg"] or f"'{schema}.no_such_table_x'" in problem["msg"]
    assert "does not exist" in problem["msg"] and "connect" not in problem["msg"]


@pytest.mark.parametrize(
    ("db_type", "schema", "table"),
    [("postgresql", "pg_catalog", "pg_am"), ("mysql", "mysql", "db")],
)
def test_an_existing_table_still_previews(api, saved, db_type, schema, table):
    response = api.get(
        "/api/database/preview",
        params={"connectionId": saved(db_type), "schema": schema, "table": table, "limit": 2},
        headers=H,
    )
    assert response.status_code == 200, response.text
    assert response.json()["columns"]


def test_an_unreachable_source_is_still_a_502(api):
    body = {"name": "closed port", "type": "postgresql", "host": "127.0.0.1", "port": 1}
    connection_id = api.post("/api/connections", json=body, headers=H).json()["id"]
    response = api.get(
        "/api/database/preview", params={"connectionId": connection_id, "table": "t"}, headers=H
    )
    assert response.status_code == 502 and "refused the connection" in response.json()["detail"]

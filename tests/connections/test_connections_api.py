"""Saved connections: encrypted secrets that never come back, connection strings parsed,
the network guard, audit diffs without passwords."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN, make_settings

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CANARY = "Canary;Pa}ss=w0rd{"


@pytest.fixture
def api(tmp_path):
    from flowforge.app import create_app

    app = create_app(make_settings(tmp_path))
    with TestClient(app) as client:
        client.app_state = app.state
        yield client
    app.state.database.dispose()


def create(api, **fields):
    body = {
        "name": "core banking",
        "type": "postgresql",
        "host": "127.0.0.1",
        "port": 5432,
        "database": "bank",
        "username": "reader",
        "password": CANARY,
        **fields,
    }
    return api.post("/api/connections", json=body, headers=H)


def test_password_is_encrypted_at_rest_and_masked_everywhere(api):
    response = create(api)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["password"] == "********"
    assert CANARY not in response.text
    with api.app_state.database.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_encrypted FROM connections")).scalar_one()
    assert CANARY not in stored and stored.startswith("gAAAA")
    assert api.app_state.secret_box.decrypt(stored) == CANARY
    for url in ("/api/connections", f"/api/connections/{body['id']}", "/api/audit"):
        assert CANARY not in api.get(url, headers=H).text


def test_ado_net_connection_string_is_parsed_into_fields(api):
    ado = f"Server=tcp:sql.example.internal,1433;Initial Catalog=CoreBanking;User ID=etl;Password={{{CANARY.replace('}', '}}')}}};Encrypt=True;TrustServerCertificate=False;ApplicationIntent=ReadOnly"
    response = api.post(
        "/api/connections",
        json={"name": "mssql", "type": "sql-server", "connectionString": ado},
        headers=H,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["host"], body["port"], body["database"], body["username"]) == (
        "sql.example.internal",
        1433,
        "CoreBanking",
        "etl",
    )
    assert body["options"]["encrypt"] is True
    assert body["options"]["applicationIntent"] == "ReadOnly"
    assert body["password"] == "********" and CANARY not in response.text
    stored = api.app_state.secret_box  # the password moved into the encrypted field
    with api.app_state.database.engine.connect() as connection:
        token = connection.execute(text("SELECT password_encrypted FROM connections")).scalar_one()
    assert stored.decrypt(token) == CANARY


def test_connection_string_and_fields_together_are_refused(api):
    response = api.post(
        "/api/connections",
        json={
            "name": "x",
            "type": "postgresql",
            "connectionString": "postgresql://u:p@h/db",
            "host": "h",
        },
        headers=H,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "connectionString"


def test_bad_connection_string_error_never_echoes_the_password(api):
    response = api.post(
        "/api/connections",
        json={
            "name": "x",
            "type": "sql-server",
            "connectionString": f"Server=a;Password={CANARY};Server=b",
        },
        headers=H,
    )
    assert response.status_code == 422
    assert CANARY not in response.text and "Pa" not in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "metadata.google.internal", "0xA9FEA9FE", "[fd00:ec2::254]"]
)
def test_metadata_and_link_local_targets_are_refused(api, host):
    response = create(api, host=host.strip("[]"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "host"


def test_windows_authentication_stores_no_password(api):
    response = create(api, type="sql-server", authentication="windows")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "password"
    response = create(api, type="sql-server", authentication="windows", password=None)
    assert response.status_code == 201 and response.json()["password"] is None


def test_dangerous_driver_options_are_refused(api):
    response = api.post(
        "/api/connections",
        json={
            "name": "pg",
            "type": "postgresql",
            "connectionString": "host=h dbname=d sslkey=/etc/ssl/private/key.pem",
        },
        headers=H,
    )
    assert response.status_code == 422


def test_patch_keeps_the_password_unless_given_and_checks_version(api):
    created = create(api).json()
    url = f"/api/connections/{created['id']}"
    response = api.patch(url, json={"database": "bank2", "version": 1}, headers=H)
    assert response.status_code == 200, response.text
    assert response.json()["database"] == "bank2" and response.json()["password"] == "********"
    with api.app_state.database.engine.connect() as connection:
        token = connection.execute(text("SELECT password_encrypted FROM connections")).scalar_one()
    assert api.app_state.secret_box.decrypt(token) == CANARY
    assert api.patch(url, json={"database": "x", "version": 1}, headers=H).status_code == 409
    api.patch(url, json={"password": "new-secret", "version": 2}, headers=H)
    with api.app_state.database.engine.connect() as connection:
        token = connection.execute(text("SELECT password_encrypted FROM connections")).scalar_one()
    assert api.app_state.secret_box.decrypt(token) == "new-secret"
    log = api.get("/api/audit", params={"entityType": "connection"}, headers=H).text
    assert "new-secret" not in log and CANARY not in log


def test_an_empty_password_keeps_the_stored_one_and_null_removes_it(api):
    """The UI's edit form sends its password field as typed: left empty, the stored password
    stays (it is never shown, so the form cannot send it back)."""
    created = create(api).json()
    url = f"/api/connections/{created['id']}"

    def stored():
        with api.app_state.database.engine.connect() as connection:
            return connection.execute(
                text("SELECT password_encrypted FROM connections")
            ).scalar_one()

    response = api.patch(
        url, json={"database": "bank2", "username": "etl", "password": "", "version": 1}, headers=H
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["database"], body["username"], body["password"]) == ("bank2", "etl", "********")
    assert api.app_state.secret_box.decrypt(stored()) == CANARY
    # Empty is no way around the rule that a moved connection needs its password again.
    moved = api.patch(url, json={"host": "10.9.8.7", "password": "", "version": 2}, headers=H)
    assert moved.status_code == 422 and moved.json()["detail"][0]["field"] == "password"
    assert api.app_state.secret_box.decrypt(stored()) == CANARY
    # null still removes it.
    response = api.patch(url, json={"password": None, "version": 2}, headers=H)
    assert response.status_code == 200, response.text
    assert response.json()["password"] is None and stored() is None


@pytest.mark.parametrize("moved", [{"host": "10.9.8.7"}, {"port": 6543}])
def test_pointing_a_connection_elsewhere_needs_the_password_again(api, moved):
    created = create(api).json()
    url = f"/api/connections/{created['id']}"
    response = api.patch(url, json={**moved, "version": 1}, headers=H)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "password"
    assert "points elsewhere" in response.json()["detail"][0]["msg"]
    unchanged = api.get(url, headers=H).json()
    assert (unchanged["host"], unchanged["port"]) == ("127.0.0.1", 5432)
    # With the password given again, the change is taken.
    response = api.patch(url, json={**moved, "password": "new-secret", "version": 1}, headers=H)
    assert response.status_code == 200, response.text


def test_names_are_unique_and_delete_is_refused_while_a_job_uses_it(api):
    created = create(api).json()
    assert create(api).status_code == 409
    workflow = api.post("/api/workflows", json={"name": "w"}, headers=H).json()
    job = {
        "name": "Ingest customers",
        "type": "database",
        "sourceConfig": {
            "type": "postgresql",
            "databaseConfig": {"connectionId": created["id"], "tableName": "customers"},
        },
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_customers"}},
    }
    assert api.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=H).status_code == 201
    refused = api.delete(f"/api/connections/{created['id']}", headers=H)
    assert refused.status_code == 409 and "Ingest customers" in refused.json()["detail"]
    api.delete(f"/api/workflows/{workflow['id']}", headers=H)
    assert api.delete(f"/api/connections/{created['id']}", headers=H).status_code == 204
    assert api.get(f"/api/connections/{created['id']}", headers=H).status_code == 404


def test_sqlite_files_outside_the_sources_directory_are_refused(api):
    response = api.post(
        "/api/connections",
        json={"name": "lite", "type": "sqlite", "database": "/etc/passwd"},
        headers=H,
    )
    assert response.status_code == 422
    ok = api.post(
        "/api/connections",
        json={"name": "lite", "type": "sqlite", "database": "bank.db"},
        headers=H,
    )
    assert ok.status_code == 201, ok.text


NUL_FIELDS = [
    ({"type": "sqlite", "database": "ba\x00nk.db"}, "database"),
    ({"type": "postgresql", "host": "127.0.0.1", "database": "ba\x00nk"}, "database"),
    ({"type": "postgresql", "host": "127.0.0.1", "username": "re\x00ader"}, "username"),
    ({"type": "postgresql", "host": "127.0.0.1", "password": "pw\x00"}, "password"),
    ({"type": "postgresql", "host": "127.0.0.1", "options": {"schema": "s\x00"}}, "options.schema"),
    ({"type": "mysql", "host": "127.0.0.1", "database": "\x00"}, "database"),
    ({"type": "mysql", "host": "127.0.0.1", "username": "root\x00"}, "username"),
    (
        {"type": "sql-server", "host": "127.0.0.1", "options": {"instance": "I\x00"}},
        "options.instance",
    ),
    ({"type": "oracle", "host": "127.0.0.1", "database": "FREE\x00PDB1"}, "database"),
    ({"type": "snowflake", "options": {"account": "ac\x00ct"}}, "options.account"),
    (
        {"type": "snowflake", "options": {"account": "acct", "warehouse": "w\x00"}},
        "options.warehouse",
    ),
]


@pytest.mark.parametrize(("fields", "field"), NUL_FIELDS)
def test_nul_in_any_connection_field_is_refused_at_save_naming_it(editor, fields, field):
    name = f"nul {field} {fields['type']}"
    response = editor.post("/api/connections", json={"name": name, **fields})
    assert response.status_code == 422, response.text
    assert [item["field"] for item in response.json()["detail"]] == [field]
    assert "NUL" in response.json()["detail"][0]["msg"]
    assert name not in [c["name"] for c in editor.get("/api/connections").json()["data"]]


@pytest.mark.parametrize(("fields", "field"), NUL_FIELDS[:3])
def test_nul_in_a_connection_to_test_is_refused_naming_it(editor, fields, field):
    response = editor.post("/api/test-connection/database", json={"connection": fields})
    assert response.status_code == 422, response.text
    assert [item["field"] for item in response.json()["detail"]] == [f"connection.{field}"]


def test_nul_in_a_changed_connection_field_is_refused(editor):
    created = editor.post(
        "/api/connections", json={"name": "nul patch", "type": "sqlite", "database": "bank.db"}
    ).json()
    url = f"/api/connections/{created['id']}"
    response = editor.patch(url, json={"database": "bank\x00.db"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "database"
    assert editor.get(url).json()["database"] == "bank.db"


@pytest.mark.parametrize("host", ["\u0080", "a..b", "x" * 64 + ".example.com"])
def test_a_host_name_dns_cannot_carry_is_refused_at_save(editor, host):
    # Found by the OpenAPI fuzzing: getaddrinfo's IDNA encoding raised a UnicodeError (500).
    body = {"name": f"bad host {host[:8]!r}", "type": "mysql", "host": host, "port": 3306}
    response = editor.post("/api/connections", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "host"
    assert "not a valid host name" in response.json()["detail"][0]["msg"]


# --- SQL Server: TLS, Entra ID, and the options each type takes ---------------------------------


def test_the_connection_form_comes_from_one_list_per_driver(api):
    forms = {f["type"]: f for f in api.get("/api/connection-types", headers=H).json()["data"]}
    assert set(forms) == {"sql-server", "postgresql", "mysql", "oracle", "snowflake", "sqlite"}
    sql_server = forms["sql-server"]
    methods = [m["name"] for m in sql_server["authentication"]]
    assert methods[0] == "sql" and {
        "azure-ad-service-principal",
        "azure-ad-managed-identity",
        "azure-ad-access-token",
        "azure-ad-password",
        "windows",
    } <= set(methods)
    encrypt = next(o for o in sql_server["options"] if o["name"] == "encrypt")
    assert encrypt["choices"] == ["mandatory", "strict", "optional"]
    assert encrypt["default"] == "mandatory"
    assert {"caFile", "hostNameInCertificate", "tenantId"} <= {
        o["name"] for o in sql_server["options"]
    }
    assert [m["name"] for m in forms["postgresql"]["authentication"]] == ["sql"]


def test_an_option_of_another_database_type_is_refused_naming_it(api):
    response = create(api, options={"tenantId": "t"})
    assert response.status_code == 422
    assert "tenantId is not an option of a PostgreSQL connection" in response.text


def test_trusting_any_certificate_is_kept_but_shown_as_a_warning(api):
    response = create(
        api,
        type="sql-server",
        port=1433,
        options={"encrypt": "mandatory", "trustServerCertificate": True},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["options"]["encrypt"] == "mandatory"
    assert any("trustServerCertificate" in w for w in body["warnings"])
    again = api.get(f"/api/connections/{body['id']}", headers=H).json()
    assert again["warnings"] == body["warnings"]
    verified = create(api, name="verified", type="sql-server", port=1433, options={})
    assert verified.json()["warnings"] == []


def test_strict_encryption_survives_a_pasted_connection_string(api):
    response = api.post(
        "/api/connections",
        json={
            "name": "strict",
            "type": "sql-server",
            "connectionString": "Server=db.example.com;User ID=u;Password=p;Encrypt=Strict;"
            "HostNameInCertificate=db.corp;caFile=bank-ca.pem",
        },
        headers=H,
    )
    assert response.status_code == 201, response.text
    options = response.json()["options"]
    assert options["encrypt"] == "strict"
    assert options["hostNameInCertificate"] == "db.corp"
    assert options["caFile"] == "bank-ca.pem"


@pytest.mark.parametrize("ca_file", ["/etc/passwd", "../../etc/ssl/private/key.pem", "/"])
def test_a_ca_file_outside_the_ca_folder_is_refused(api, ca_file):
    """Like a SQLite file, a CA file is read on the worker: only from the operators' folder
    (FLOWFORGE_CA_DIR), never a path a connection chooses."""
    response = create(api, type="sql-server", port=1433, options={"caFile": ca_file})
    assert response.status_code == 422, response.text
    assert "outside the folder CA certificates may be read from" in response.text


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"authentication": "azure-ad-service-principal", "options": {}}, "tenantId"),
        (
            {"authentication": "azure-ad-access-token", "username": "someone"},
            "leave the user name empty",
        ),
        ({"authentication": "azure-ad-managed-identity"}, "no password"),
        (
            {"authentication": "azure-ad-managed-identity", "type": "postgresql"},
            "signs in with sql",
        ),
    ],
)
def test_entra_sign_in_settings_are_checked_at_save(api, fields, words):
    response = create(api, **{"type": "sql-server", "port": 1433, **fields})
    assert response.status_code == 422, response.text
    assert words in response.text
    assert CANARY not in response.text


def test_an_entra_secret_is_encrypted_like_a_password(api):
    response = create(
        api,
        type="sql-server",
        port=1433,
        username="11111111-2222-3333-4444-555555555555",
        authentication="azure-ad-service-principal",
        options={"tenantId": "contoso"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["password"] == "********" and CANARY not in response.text
    with api.app_state.database.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_encrypted FROM connections")).scalar_one()
    assert api.app_state.secret_box.decrypt(stored) == CANARY


# --- POST /api/test-connection/database: three body shapes (issue 11, defect 6) ---------------

TEST_URL = "/api/test-connection/database"


def local_postgres(**extra) -> dict:
    from tests.conftest import PG_HOST, PG_PORT, require_service

    require_service("PostgreSQL", PG_HOST, PG_PORT)
    return {
        "type": "postgresql",
        "host": PG_HOST,
        "port": PG_PORT,
        "database": "postgres",
        "username": "postgres",
        "password": "not-needed-here",
        **extra,
    }


def test_the_body_of_post_connections_tests_the_connection_as_it_is(api):
    """The flat body of POST /api/connections, name included, used to be 422 "Extra inputs
    are not permitted" for every field."""
    flat = api.post(TEST_URL, json=local_postgres(name="core banking"), headers=H)
    assert flat.status_code == 200, flat.text
    assert flat.json()["success"] is True, flat.json()
    assert flat.json()["serverVersion"]
    nested = api.post(TEST_URL, json={"connection": local_postgres()}, headers=H)
    assert nested.status_code == 200 and nested.json()["success"] is True, nested.text
    saved = create(api, **local_postgres(password=CANARY)).json()
    by_id = api.post(TEST_URL, json={"connectionId": saved["id"]}, headers=H)
    assert by_id.status_code == 200 and by_id.json()["success"] is True, by_id.text


def test_a_flat_body_that_fails_to_connect_says_why_with_its_kind(api):
    answer = api.post(TEST_URL, json=local_postgres(port=1), headers=H)
    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is False and answer.json()["kind"] == "refused"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "nothing to test"),
        ({"name": "only a name"}, "nothing to test"),
        (
            {"connectionId": "x", "connection": {"type": "sqlite", "database": "a.db"}},
            "connectionId and connection cannot go together",
        ),
        (
            {"connectionId": "x", "type": "sqlite", "database": "a.db"},
            "connectionId and top-level fields (database, type) cannot go together",
        ),
        (
            {"connection": {"type": "sqlite", "database": "a.db"}, "host": "h"},
            "connection and top-level fields (host) cannot go together",
        ),
    ],
)
def test_neither_or_several_shapes_is_a_422_saying_what_to_send(api, body, words):
    response = api.post(TEST_URL, json=body, headers=H)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert words in problem["msg"]
    assert '{"connectionId": "<id>"}' in problem["msg"]
    assert '{"connection": {"type": ...' in problem["msg"]
    assert "at the top level as POST /api/connections takes them" in problem["msg"]


def test_a_bad_flat_field_is_a_422_naming_that_field_only(api):
    response = api.post(
        TEST_URL, json={"type": "postgresql", "host": "h", "port": 0, "hots": "x"}, headers=H
    )
    assert response.status_code == 422, response.text
    problems = {item["field"]: item["msg"] for item in response.json()["detail"]}
    assert set(problems) == {"port", "hots"}, problems
    assert "Extra inputs are not permitted" in problems["hots"]
    missing = api.post(TEST_URL, json={"host": "h"}, headers=H)
    assert missing.status_code == 422
    assert [item["field"] for item in missing.json()["detail"]] == ["type"]

import pytest

from tests.catalog.factories import (
    BAD_FILE_PATHS,
    TEMPLATE_JOB,
    csv_job,
    database_job,
    gold_job,
    template_job,
    unique_table,
    workflow,
)

BOOKKEEPING = {"id", "workflowId", "position", "version", "createdAt", "updatedAt"}


@pytest.fixture
def wf(editor, template_inputs):
    return editor.post("/api/workflows", json=workflow()).json()


@pytest.fixture(scope="module")
def template_inputs(backend):
    """Jobs writing the two tables the template's job reads: a job reads only tables a job
    writes or the catalog holds."""
    editor = backend["editor"]
    inputs = editor.post("/api/workflows", json=workflow()).json()
    for table in TEMPLATE_JOB["sourceConfig"]["tables"]:
        response = editor.post(f"/api/workflows/{inputs['id']}/jobs", json=csv_job(table))
        assert response.status_code == 201, response.text


def jobs_url(wf):
    return f"/api/workflows/{wf['id']}/jobs"


def given_fields(body: dict) -> dict:
    return {key: value for key, value in body.items() if key not in BOOKKEEPING}


def test_template_job_round_trips_unchanged(editor, wf):
    job = template_job()
    created = editor.post(jobs_url(wf), json=job)
    assert created.status_code == 201, created.text
    assert given_fields(created.json()) == job
    fetched = editor.get(f"{jobs_url(wf)}/{created.json()['id']}").json()
    assert given_fields(fetched) == job
    listed = editor.get(jobs_url(wf)).json()
    assert [given_fields(item) for item in listed["data"]] == [job]


def test_snake_case_input_comes_back_camel_case(editor, wf):
    job = {
        "name": "snake",
        "type": "file-based",
        "source_config": {
            "type": "csv",
            "file_config": {"file_path": "a.csv", "has_header": False},
        },
        "destination_config": {
            "bronze_config": {"table_name": "bronze_a", "write_mode": "overwrite"}
        },
    }
    body = editor.post(jobs_url(wf), json=job).json()
    assert body["sourceConfig"] == {
        "type": "csv",
        "fileConfig": {"filePath": "a.csv", "hasHeader": False},
    }
    assert body["destinationConfig"] == {
        "bronzeConfig": {"tableName": "bronze_a", "writeMode": "overwrite"}
    }


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda j: j.update(bogus=1), "bogus"),
        (lambda j: j["sourceConfig"].update(colour="red"), "sourceConfig.multi-table.colour"),
        (lambda j: j.update(type="nonsense"), "type"),
        (
            lambda j: j["destinationConfig"]["silverConfig"].update(tableName="../etc"),
            "destinationConfig.silverConfig.tableName",
        ),
        (lambda j: j.update(type="database"), "sourceConfig.type"),
        (
            lambda j: j["destinationConfig"]["silverConfig"].pop("primaryKey"),
            "destinationConfig.silverConfig.primaryKey",
        ),
        (
            lambda j: j["transformationConfig"].update(
                aggregations=[{"column": "x", "function": "SUM", "alias": "s"}]
            ),
            "transformationConfig.aggregations",
        ),
        (
            lambda j: j["transformationConfig"]["derivedColumns"].append(
                {"name": "full_name", "expression": "1"}
            ),
            "transformationConfig.derivedColumns[2].name",
        ),
    ],
)
def test_invalid_job_is_422_naming_the_field(editor, wf, mutate, field):
    job = template_job()
    mutate(job)
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422, response.text
    fields = [item["field"] for item in response.json()["detail"]]
    assert field in fields
    assert editor.get(jobs_url(wf)).json()["count"] == 0


@pytest.fixture
def mssql_connection(editor):
    import uuid

    response = editor.post(
        "/api/connections",
        json={
            "name": f"core-{uuid.uuid4().hex[:6]}",
            "type": "sql-server",
            "host": "127.0.0.1",
            "username": "etl",
            "password": "pw",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def with_connection(job: dict, connection_id: str) -> dict:
    job["sourceConfig"]["databaseConfig"]["connectionId"] = connection_id
    return job


def test_database_job_needs_exactly_one_read_mode_and_delta_column(editor, wf, mssql_connection):
    job = with_connection(database_job(), mssql_connection)
    job["sourceConfig"]["databaseConfig"]["query"] = "SELECT 1"
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "sourceConfig.databaseConfig"
    job = with_connection(database_job(), mssql_connection)
    del job["sourceConfig"]["databaseConfig"]["deltaColumn"]
    response = editor.post(jobs_url(wf), json=job)
    assert [d["field"] for d in response.json()["detail"]] == [
        "sourceConfig.databaseConfig.deltaColumn"
    ]


def test_patch_replaces_top_level_fields_and_checks_version(editor, wf):
    created = editor.post(jobs_url(wf), json=csv_job()).json()
    url = f"{jobs_url(wf)}/{created['id']}"
    response = editor.patch(url, json={"name": "Renamed", "version": 1})
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed" and response.json()["version"] == 2
    assert response.json()["sourceConfig"] == csv_job()["sourceConfig"]
    assert editor.patch(url, json={"name": "Again", "version": 1}).status_code == 409
    assert editor.patch(url, json={"name": "Again"}, headers={"If-Match": '"1"'}).status_code == 409
    assert editor.get(url).json()["name"] == "Renamed"


def test_patch_that_breaks_the_job_is_422_and_changes_nothing(editor, wf):
    created = editor.post(jobs_url(wf), json=csv_job()).json()
    url = f"{jobs_url(wf)}/{created['id']}"
    response = editor.patch(url, json={"type": "database", "version": 1})
    assert response.status_code == 422
    assert editor.get(url).json()["type"] == "file-based"
    response = editor.patch(url, json={"name": None, "version": 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "name"


def test_dependency_cycle_is_rejected_on_save(editor, wf):
    # A job reads only tables some job writes (or the catalog holds), and a table has one
    # owner, so a cycle closes through dependsOn: B reads A's table, A would depend on B.
    table_a, table_b = unique_table("table_a"), unique_table("table_b")
    ingest = editor.post(jobs_url(wf), json=csv_job(table_a, "A")).json()
    first = editor.post(jobs_url(wf), json=gold_job(table_a, table_b, "B from A")).json()
    response = editor.patch(
        f"{jobs_url(wf)}/{ingest['id']}", json={"dependsOn": [first["id"]], "version": 1}
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["field"] == "dependsOn" and "cycle" in detail["msg"]
    third = editor.post(jobs_url(wf), json=csv_job(unique_table("table_c"), "C")).json()
    response = editor.patch(
        f"{jobs_url(wf)}/{third['id']}", json={"dependsOn": [first["id"]], "version": 1}
    )
    assert response.status_code == 200
    response = editor.patch(
        f"{jobs_url(wf)}/{first['id']}", json={"dependsOn": [third["id"]], "version": 1}
    )
    assert response.status_code == 422
    assert "cycle" in response.json()["detail"][0]["msg"]


def test_depends_on_must_name_a_job_of_the_workflow(editor, wf):
    job = csv_job()
    job["dependsOn"] = ["missing-job"]
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "dependsOn[0]"


def test_clone_job_gets_new_id_and_copy_name(editor, wf):
    job = template_job()
    created = editor.post(jobs_url(wf), json=job).json()
    response = editor.post(f"{jobs_url(wf)}/{created['id']}/clone")
    assert response.status_code == 201
    copy = response.json()
    assert copy["id"] != created["id"]
    assert copy["name"] == "Build Silver Customer Master (copy)"
    assert copy["position"] == created["position"] + 1
    # The copy writes a table of its own (a table has one owner job); the rest is the same.
    table = job["destinationConfig"]["silverConfig"]["tableName"]
    job["destinationConfig"]["silverConfig"]["tableName"] = f"{table}_copy"
    assert {k: v for k, v in given_fields(copy).items() if k != "name"} == {
        k: v for k, v in job.items() if k != "name"
    }


def test_clone_job_into_another_workflow(editor, wf):
    other = editor.post("/api/workflows", json=workflow()).json()
    dependency = editor.post(jobs_url(wf), json=csv_job(name="X")).json()
    job = csv_job()
    job["dependsOn"] = [dependency["id"]]
    created = editor.post(jobs_url(wf), json=job).json()
    response = editor.post(
        f"{jobs_url(wf)}/{created['id']}/clone",
        json={"targetWorkflowId": other["id"], "name": "Moved"},
    )
    assert response.status_code == 201
    assert response.json()["workflowId"] == other["id"]
    assert response.json()["name"] == "Moved"
    assert "dependsOn" not in response.json()
    missing = editor.post(
        f"{jobs_url(wf)}/{created['id']}/clone", json={"targetWorkflowId": "nope"}
    )
    assert missing.status_code == 404


def test_delete_job_and_dependents_protect_it(editor, wf):
    first = editor.post(jobs_url(wf), json=csv_job(name="X")).json()
    job = csv_job()
    job["dependsOn"] = [first["id"]]
    second = editor.post(jobs_url(wf), json=job).json()
    response = editor.delete(f"{jobs_url(wf)}/{first['id']}")
    assert response.status_code == 409
    assert editor.delete(f"{jobs_url(wf)}/{second['id']}").status_code == 204
    assert editor.delete(f"{jobs_url(wf)}/{first['id']}").status_code == 204
    assert editor.get(jobs_url(wf)).json()["count"] == 0
    assert editor.delete(f"{jobs_url(wf)}/{first['id']}").status_code == 404


def test_job_of_another_workflow_is_404(editor, wf):
    other = editor.post("/api/workflows", json=workflow()).json()
    created = editor.post(jobs_url(wf), json=csv_job()).json()
    assert editor.get(f"{jobs_url(other)}/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("read_csv('/etc/passwd')", "read_csv"),
        ("(SELECT 1)", "subquer"),
        ("getenv('HOME')", "getenv"),
        ("CONCAT(first_name, ' ') ; DROP TABLE x", "refused"),
        ("CONCAT(first_name,", "refused"),
    ],
)
def test_refused_expression_is_422_naming_expression_and_reason(editor, wf, expression, reason):
    job = template_job()
    job["transformationConfig"]["derivedColumns"][1]["expression"] = expression
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [d["field"] for d in detail] == ["transformationConfig.derivedColumns[1].expression"]
    assert expression[:10] in detail[0]["msg"] and reason in detail[0]["msg"].lower()


def test_refused_filter_is_422(editor, wf):
    job = gold_job("silver_tx", "gold_tx")
    job["transformationConfig"]["filters"] = ["amount > 0", "glob('*') IS NOT NULL"]
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "transformationConfig.filters[1]"


def test_database_job_needs_a_saved_connection_of_its_type(editor, wf, mssql_connection):
    response = editor.post(jobs_url(wf), json=database_job())
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "sourceConfig.databaseConfig.connectionId"
    job = with_connection(database_job(), mssql_connection)
    job["sourceConfig"]["type"] = "postgresql"
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "sourceConfig.type"
    assert (
        editor.post(
            jobs_url(wf), json=with_connection(database_job(), mssql_connection)
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("query", "accepted"),
    [
        ("SELECT TOP (10) * FROM dbo.customers WITH (NOLOCK)", True),
        ("WITH c AS (SELECT * FROM dbo.customers) SELECT * FROM c", True),
        ("DELETE FROM dbo.customers", False),
        ("SELECT * INTO dbo.copy FROM dbo.customers", False),
        ("SELECT 1; DROP TABLE dbo.customers", False),
        ("EXEC xp_cmdshell 'dir'", False),
        ("SELECT * FROM OPENROWSET('SQLNCLI', 'x', 'SELECT 1')", False),
    ],
)
def test_a_query_must_only_read(editor, wf, mssql_connection, query, accepted):
    job = with_connection(database_job(), mssql_connection)
    database = job["sourceConfig"]["databaseConfig"]
    del database["tableName"]
    database["query"] = query
    response = editor.post(jobs_url(wf), json=job)
    if accepted:
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["field"] == "sourceConfig.databaseConfig.query"


@pytest.mark.parametrize(("file_path", "words"), BAD_FILE_PATHS)
def test_a_file_path_outside_the_landing_area_is_refused_at_save(editor, wf, file_path, words):
    job = csv_job()
    job["sourceConfig"]["fileConfig"]["filePath"] = file_path
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422, response.text
    problems = {d["field"]: d["msg"] for d in response.json()["detail"]}
    assert list(problems) == ["sourceConfig.fileConfig.filePath"], problems
    assert words in problems["sourceConfig.fileConfig.filePath"]
    assert editor.get(jobs_url(wf)).json()["count"] == 0


def test_an_empty_file_path_is_refused_at_save(editor, wf):
    job = csv_job()
    job["sourceConfig"]["fileConfig"]["filePath"] = ""
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["sourceConfig.fileConfig.filePath"]


@pytest.mark.parametrize("file_path", ["x.csv", "./sales/2024-01.csv", "a b/ü.csv", "..x/y..csv"])
def test_a_file_path_inside_the_landing_area_is_saved(editor, wf, file_path):
    job = csv_job()
    job["sourceConfig"]["fileConfig"]["filePath"] = file_path
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 201, response.text
    assert response.json()["sourceConfig"]["fileConfig"]["filePath"] == file_path


def test_a_patch_to_a_file_path_outside_the_landing_area_is_refused(editor, wf):
    created = editor.post(jobs_url(wf), json=csv_job()).json()
    source = csv_job()["sourceConfig"]
    source["fileConfig"]["filePath"] = "../../etc/shadow"
    url = f"{jobs_url(wf)}/{created['id']}"
    response = editor.patch(url, json={"sourceConfig": source, "version": 1})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "sourceConfig.fileConfig.filePath"
    assert editor.get(url).json()["sourceConfig"] == csv_job()["sourceConfig"]


# --- qualified names (issue 11: they saved fine, then failed at run time) --------------------


@pytest.fixture
def connection_to(editor):
    """A saved connection of ``db_type`` to ``database``; its id."""
    import uuid

    def make(db_type: str, database: str | None = "core") -> str:
        body = {
            "name": f"{db_type}-{uuid.uuid4().hex[:6]}",
            "type": db_type,
            "host": "127.0.0.1",
            "username": "etl",
            "password": "pw",
        }
        if database is not None:
            body["database"] = database
        response = editor.post("/api/connections", json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return make


def name_job(connection_id: str, db_type: str, **database_config) -> dict:
    job = with_connection(database_job(), connection_id)
    job["sourceConfig"]["type"] = db_type
    config = job["sourceConfig"]["databaseConfig"]
    for key in ("tableName", "isIncremental", "deltaColumn"):
        config.pop(key)
    config.update(database_config)
    return job


@pytest.mark.parametrize(
    ("db_type", "field", "name"),
    [
        ("sql-server", "storedProcedure", "risk.usp_exposures_since"),
        ("sql-server", "tableName", "sales.Orders"),
        ("sql-server", "tableName", "[core].[sales].[Order Lines]"),
        ("sql-server", "tableName", "[odd]]name].[with.dot]"),
        ("sql-server", "tableName", '"sales"."Orders"'),
        ("postgresql", "tableName", '"sales"."Orders"'),
        ("postgresql", "storedProcedure", "risk.exposures_since"),
        ("postgresql", "tableName", "core.sales.orders"),
        ("mysql", "tableName", "`shop`.`orders`"),
        ("mysql", "storedProcedure", "shop.orders_since"),
        ("oracle", "tableName", 'HR."Employees"'),
        ("snowflake", "tableName", "CORE.SALES.ORDERS"),
        ("sqlite", "tableName", "main.orders"),
    ],
)
def test_a_qualified_name_is_saved(editor, wf, connection_to, db_type, field, name):
    job = name_job(connection_to(db_type), db_type, **{field: name})
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 201, response.text
    assert response.json()["sourceConfig"]["databaseConfig"][field] == name


@pytest.mark.parametrize(
    ("db_type", "field", "name", "words"),
    [
        ("sql-server", "tableName", "a..b", "empty part"),
        ("sql-server", "tableName", "[sales.Orders", "never closed"),
        ("sql-server", "tableName", "sales.Orders]", "unbalanced ]"),
        ("sql-server", "storedProcedure", "[risk]usp", "put a dot between parts"),
        ("sql-server", "tableName", "srv.core.sales.Orders", "at most 3"),
        ("sql-server", "tableName", "sales.", "last part is missing"),
        ("postgresql", "tableName", 'a."b', "never closed"),
        ("postgresql", "tableName", "a.b.c.d", "at most 3"),
        ("postgresql", "tableName", "[sales].[orders]", 'quotes names with ""'),
        ("mysql", "tableName", "a.b.c", "at most 2: database.name"),
        ("oracle", "tableName", "a.b.c", "at most 2"),
        ("sqlite", "storedProcedure", "x..y", "empty part"),
    ],
)
def test_an_unreadable_name_is_422_naming_the_field(
    editor, wf, connection_to, db_type, field, name, words
):
    job = name_job(connection_to(db_type), db_type, **{field: name})
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422, response.text
    # a field's own bound is pydantic's (its path names the source type), the rest the contract's
    problems = [
        item["msg"]
        for item in response.json()["detail"]
        if item["field"].startswith("sourceConfig.")
        and item["field"].endswith(f"databaseConfig.{field}")
    ]
    assert any(words in problem for problem in problems), response.text
    assert editor.get(jobs_url(wf)).json()["count"] == 0


def test_a_schema_that_contradicts_the_qualified_name_is_422(editor, wf, connection_to):
    connection = connection_to("sql-server")
    job = name_job(connection, "sql-server", tableName="sales.Orders", schema="dbo")
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "sourceConfig.databaseConfig.tableName"
    assert "'sales'" in problem["msg"] and "'dbo'" in problem["msg"]
    assert "in one place" in problem["msg"]
    # the same schema twice is no contradiction
    job = name_job(connection, "sql-server", tableName="[sales].[Orders]", schema="sales")
    assert editor.post(jobs_url(wf), json=job).status_code == 201


def test_a_database_part_must_be_the_connections_database(editor, wf, connection_to):
    job = name_job(connection_to("sql-server", "core"), "sql-server", tableName="other.dbo.t")
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "sourceConfig.databaseConfig.tableName"
    assert "'other'" in problem["msg"] and "'core'" in problem["msg"]
    job = name_job(connection_to("sql-server", None), "sql-server", storedProcedure="x.dbo.p")
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422, response.text
    assert "names no database" in response.json()["detail"][0]["msg"]
    # the connection's own database, in any case, is accepted
    job = name_job(connection_to("sql-server", "Core"), "sql-server", tableName="core.dbo.t")
    assert editor.post(jobs_url(wf), json=job).status_code == 201


@pytest.mark.parametrize(
    ("db_type", "config", "field", "words"),
    [
        ("postgresql", {"tableName": "t", "partitionColumn": "id"},
         "partitionColumn", "set partitions to 2 or more"),
        ("postgresql", {"query": "SELECT * FROM t", "partitions": 4},
         "partitions", "partitions needs a tableName"),
        ("mysql", {"storedProcedure": "p", "partitions": 2},
         "partitions", "partitions needs a tableName"),
        ("sql-server", {"tableName": "dbo.t", "partitions": 2},
         "partitions", "parallel reads are for PostgreSQL and MySQL/MariaDB tables, not sql-server"),
        ("postgresql", {"tableName": "t", "partitions": 17}, "partitions", "16"),
        ("postgresql", {"tableName": "t", "partitions": 0}, "partitions", "1"),
        ("postgresql", {"tableName": "t", "partitions": 2, "partitionColumn": ""},
         "partitionColumn", "at least 1 character"),
    ],
)  # fmt: skip
def test_a_parallel_read_that_cannot_be_split_is_422_naming_the_field(
    editor, wf, connection_to, db_type, config, field, words
):
    job = name_job(connection_to(db_type), db_type, **config)
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 422, response.text
    # a field's own bound is pydantic's (its path names the source type), the rest the contract's
    problems = [
        item["msg"]
        for item in response.json()["detail"]
        if item["field"].startswith("sourceConfig.")
        and item["field"].endswith(f"databaseConfig.{field}")
    ]
    assert any(words in problem for problem in problems), response.text
    assert editor.get(jobs_url(wf)).json()["count"] == 0


def test_a_parallel_table_read_is_saved_with_its_partitions(editor, wf, connection_to):
    job = name_job(
        connection_to("postgresql"), "postgresql", tableName="orders", partitions=4,
        partitionColumn="order_id",
    )  # fmt: skip
    response = editor.post(jobs_url(wf), json=job)
    assert response.status_code == 201, response.text
    saved = response.json()["sourceConfig"]["databaseConfig"]
    assert saved["partitions"] == 4 and saved["partitionColumn"] == "order_id"

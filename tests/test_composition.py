"""The composition root hands the workers' code to the services that run it without a
broker; a service served alone has none, and says so instead of failing later."""

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from flowforge.app import create_app, create_single_service_app
from flowforge_ingest import embedded as ingest_embedded
from flowforge_orchestrator.dispatch import CeleryRuntime, InProcessRuntime, make_runtime
from flowforge_shared.contracts.tasks import INGEST_QUEUE, TRANSFORM_QUEUE
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import ConfigurationError
from flowforge_shared.operations import InProcessOperations
from flowforge_transform import embedded as transform_embedded
from tests.conftest import ADMIN_TOKEN, make_settings


def test_the_embedded_app_hands_the_workers_code_to_the_runtime_and_the_operations(tmp_path):
    app = create_app(make_settings(tmp_path))
    try:
        runtime = app.state.runtime
        assert isinstance(runtime, InProcessRuntime)
        assert runtime.runners == {
            INGEST_QUEUE: ingest_embedded.run_ingest_job,
            TRANSFORM_QUEUE: transform_embedded.run_transform_job,
        }
        assert isinstance(app.state.operations, InProcessOperations)
        assert app.state.operations.perform is ingest_embedded.perform
    finally:
        app.state.runtime.close()
        app.state.operations.close()
        app.state.database.dispose()


def test_an_orchestrator_alone_without_a_broker_refuses_before_touching_anything(tmp_path):
    with pytest.raises(ConfigurationError, match="FLOWFORGE_BROKER_URL.*flowforge serve"):
        create_single_service_app("orchestrator", make_settings(tmp_path))
    assert not (tmp_path / "flowforge.db").exists()


def test_an_orchestrator_alone_with_a_broker_sends_to_it(tmp_path):
    settings = make_settings(tmp_path, broker_url="redis://127.0.0.1:6379/15")
    app = create_single_service_app("orchestrator", settings)
    try:
        assert isinstance(app.state.runtime, CeleryRuntime)
    finally:
        app.state.database.dispose()


def test_the_in_process_runtime_needs_a_runner_for_each_queue(tmp_path):
    settings = make_settings(tmp_path)
    database = Database(settings.resolved_database_url)
    try:
        with pytest.raises(ConfigurationError, match="FLOWFORGE_BROKER_URL"):
            make_runtime(settings, database, None)
        with pytest.raises(ConfigurationError, match="no job runner for transform"):
            InProcessRuntime(settings, database, {INGEST_QUEUE: ingest_embedded.run_ingest_job})
    finally:
        database.dispose()


def test_a_catalog_alone_without_a_broker_answers_database_operations_with_a_clear_503(
    tmp_path,
):
    app = create_single_service_app("catalog", make_settings(tmp_path))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(app) as client:
        answer = client.post(
            "/api/test-connection/database",
            json={"connection": {"type": "sqlite", "database": "bank.db"}},
            headers=headers,
        )
    app.state.database.dispose()
    assert answer.status_code == 503, answer.text
    assert "FLOWFORGE_BROKER_URL" in answer.json()["detail"]
    assert "flowforge serve" in answer.json()["detail"]


def test_a_service_alone_uses_and_migrates_its_own_database(tmp_path):
    own = tmp_path / "lineage-own.db"
    settings = make_settings(tmp_path, lineage_database_url=f"sqlite:///{own}")
    app = create_single_service_app("lineage", settings)
    try:
        assert app.state.database.url == f"sqlite:///{own}"
        tables = set(inspect(app.state.database.engine).get_table_names())
        assert "lineage_edges" in tables and "workflows" not in tables
        assert not (tmp_path / "flowforge.db").exists()  # the one database was never touched
    finally:
        app.state.database.dispose()


def test_services_served_together_with_databases_of_their_own_refuse_to_start(tmp_path):
    settings = make_settings(tmp_path, catalog_database_url=f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(ConfigurationError, match="share one database.*run each service apart"):
        create_app(settings)


def test_the_embedded_runners_hand_their_arguments_to_the_workers_code(monkeypatch):
    """The runners of the embedded app import the worker's code at the first job (lazily,
    see the next test) and call it with what they were given."""
    import flowforge_ingest.operations
    import flowforge_ingest.runner
    import flowforge_transform.runner

    calls = []
    for module, name in (
        (flowforge_ingest.runner, "run_ingest_job"),
        (flowforge_transform.runner, "run_transform_job"),
        (flowforge_ingest.operations, "perform"),
    ):
        monkeypatch.setattr(
            module, name, lambda *a, _name=name, **k: calls.append((_name, a, k)) or _name
        )
    assert ingest_embedded.run_ingest_job(1, b=2) == "run_ingest_job"
    assert transform_embedded.run_transform_job(3) == "run_transform_job"
    assert ingest_embedded.perform(4, c=5) == "perform"
    assert calls == [
        ("run_ingest_job", (1,), {"b": 2}),
        ("run_transform_job", (3,), {}),
        ("perform", (4,), {"c": 5}),
    ]


HEAVY = [
    "polars",
    "pyarrow",
    "deltalake",
    "duckdb",
    "connectorx",
    "adbc_driver_manager",
    "mssql_python",
    "sqlglot",
    "pandas",
    "numpy",
]


def test_the_embedded_app_does_not_import_engines_and_drivers_until_used(tmp_path):
    """`flowforge serve` at rest holds no data engine nor database driver of the workers
    (issue 17: 247 MiB at rest when every one was imported at start): each is imported by
    the code that uses it. Checked in a fresh interpreter that builds the whole app and
    answers one API request (sys.modules, deterministic, unlike RSS)."""
    code = f"""
import sys
from fastapi.testclient import TestClient
from flowforge.app import create_app
from tests.conftest import ADMIN_TOKEN, make_settings
from pathlib import Path
app = create_app(make_settings(Path({str(tmp_path)!r})))
with TestClient(app) as client:
    response = client.get("/api/workflows", headers={{"Authorization": f"Bearer {{ADMIN_TOKEN}}"}})
    assert response.status_code == 200, response.text
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"

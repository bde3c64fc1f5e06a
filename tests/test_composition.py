"""The composition root hands the workers' code to the services that run it without a
broker; a service served alone has none, and says so instead of failing later."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from flowforge.app import create_app, create_single_service_app
from flowforge_ingest.operations import perform
from flowforge_ingest.runner import run_ingest_job
from flowforge_orchestrator.dispatch import CeleryRuntime, InProcessRuntime, make_runtime
from flowforge_shared.contracts.tasks import INGEST_QUEUE, TRANSFORM_QUEUE
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import ConfigurationError
from flowforge_shared.operations import InProcessOperations
from flowforge_transform.runner import run_transform_job
from tests.conftest import ADMIN_TOKEN, make_settings


def test_the_embedded_app_hands_the_workers_code_to_the_runtime_and_the_operations(tmp_path):
    app = create_app(make_settings(tmp_path))
    try:
        runtime = app.state.runtime
        assert isinstance(runtime, InProcessRuntime)
        assert runtime.runners == {INGEST_QUEUE: run_ingest_job, TRANSFORM_QUEUE: run_transform_job}
        assert isinstance(app.state.operations, InProcessOperations)
        assert app.state.operations.perform is perform
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
            InProcessRuntime(settings, database, {INGEST_QUEUE: run_ingest_job})
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

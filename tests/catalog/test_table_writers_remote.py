"""A catalog served apart from the orchestrator asks it which active runs write a table
(its internal API, with the service secret) before it changes the table; when it cannot
know, the change is refused with a 503 that says why — never made blind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from flowforge.app import create_single_service_app
from tests.conftest import ADMIN_TOKEN, free_port, make_settings, served
from tests.orchestrator.factories import add_active_writer

SECRET = "w" * 40
H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DROP = ("/api/catalog/assets/bronze_busy/drop", {"confirm": "bronze_busy"})


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'flowforge.db'}"


@pytest.fixture
def orchestrator_url(tmp_path, database_url) -> Iterator[str]:
    """The orchestrator alone, served for real, with an active run writing bronze_busy."""
    # An orchestrator alone reaches its workers through a broker (nothing is sent here).
    settings = make_settings(
        tmp_path / "orchestrator",
        database_url,
        service_secret=SECRET,
        broker_url="redis://127.0.0.1:6379/14",
    )
    app = create_single_service_app("orchestrator", settings)
    execution_id = add_active_writer(
        app.state.database, table="bronze_busy", workflow_id="w", workflow_name="busy"
    )
    with served(app, "the orchestrator") as url:
        yield url, execution_id


def catalog(tmp_path, database_url, **settings) -> TestClient:
    options = make_settings(tmp_path / "catalog", database_url, **settings)
    return TestClient(create_single_service_app("catalog", options))


def test_the_orchestrators_answer_refuses_a_change_while_a_run_writes(
    tmp_path, database_url, orchestrator_url
) -> None:
    url, execution_id = orchestrator_url
    with catalog(tmp_path, database_url, service_secret=SECRET, orchestrator_url=url) as client:
        refused = client.post(DROP[0], json=DROP[1], headers=H)
    assert refused.status_code == 409, refused.text
    assert execution_id in refused.json()["detail"] and "'busy'" in refused.json()["detail"]


def test_a_wrong_secret_is_a_503_not_a_blind_change(tmp_path, database_url, orchestrator_url):
    url, _ = orchestrator_url
    with catalog(tmp_path, database_url, service_secret="x" * 40, orchestrator_url=url) as client:
        refused = client.post(DROP[0], json=DROP[1], headers=H)
    assert refused.status_code == 503, refused.text
    assert "the orchestrator answered 401" in refused.json()["detail"]


def test_an_orchestrator_that_does_not_answer_is_a_503(tmp_path, database_url) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with catalog(tmp_path, database_url, service_secret=SECRET, orchestrator_url=url) as client:
        refused = client.post(DROP[0], json=DROP[1], headers=H)
    assert refused.status_code == 503, refused.text
    assert "does not answer" in refused.json()["detail"]


def test_without_the_orchestrators_address_the_503_says_what_to_set(tmp_path, database_url):
    with catalog(tmp_path, database_url) as client:
        refused = client.post(DROP[0], json=DROP[1], headers=H)
    assert refused.status_code == 503, refused.text
    assert "FLOWFORGE_ORCHESTRATOR_URL" in refused.json()["detail"]

"""What the database-source suites share: an app on a fresh data dir, and waiting for a run."""

import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api(tmp_path):
    """A TestClient on an app of its own; ``api.settings`` are the app's settings."""
    from flowforge.app import create_app

    app = create_app(make_settings(tmp_path))
    with TestClient(app) as client:
        client.settings = app.state.settings
        yield client
    app.state.database.dispose()


def wait(api, execution_id: str, seconds: float = 60) -> dict:
    """The execution once it has finished (succeeded, failed or cancelled)."""
    deadline = time.monotonic() + seconds
    while True:
        execution = api.get(f"/api/executions/{execution_id}", headers=H).json()
        if execution["status"] in ("succeeded", "failed", "cancelled"):
            return execution
        if time.monotonic() > deadline:
            raise AssertionError(f"execution did not finish: {execution}")
        time.sleep(0.1)

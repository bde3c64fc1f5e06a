"""Fixtures of the orchestrator's tests."""

from __future__ import annotations

import pytest

from flowforge.app import upgrade_all
from flowforge_shared.db.engine import Database


@pytest.fixture
def database(tmp_path):
    """A migrated SQLite database of the test's own."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    upgrade_all(url)
    db = Database(url)
    yield db
    db.dispose()

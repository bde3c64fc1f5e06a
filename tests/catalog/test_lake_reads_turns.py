"""A table's sample and history read the lake (a Delta log, slow on S3) after the catalog
has said where the table is: no turn at the API's database is held meanwhile (on SQLite 4
requests use it at a time, flowforge_shared.deps.get_session). A real served app; the lake's
reads made slow."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from flowforge.app import create_app
from flowforge_shared.db.engine import SQLITE_REQUEST_SLOTS
from flowforge_shared.lake import Lake
from tests.conftest import ADMIN_TOKEN, AtOnce, make_settings, served

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ASKED = SQLITE_REQUEST_SLOTS + 2


@pytest.mark.parametrize("read", ["sample", "history"])
def test_slow_lake_reads_hold_no_database_turn(tmp_path, monkeypatch, read):
    at_once = AtOnce()
    load = Lake.load

    def slow_load(self, layer, table, version=None):
        with at_once:
            time.sleep(0.3)
        return load(self, layer, table, version)

    monkeypatch.setattr(Lake, "load", slow_load)
    app = create_app(make_settings(tmp_path))
    with served(app) as url:
        answers: list[int] = []

        def ask() -> None:
            path = f"{url}/api/catalog/assets/no_such_table/{read}"
            answers.append(httpx.get(path, headers=H, timeout=60).status_code)

        askers = [threading.Thread(target=ask) for _ in range(ASKED)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()
    assert answers == [404] * ASKED  # looked for in every layer, found in none
    assert at_once.peak == ASKED

"""Surrogate keys are a function of the data, never of which ingest job ran first.

The BFSI Customer 360 template on two fresh platforms with the same demo data. On one, the
core-banking source is slow (the test holds a write lock on its SQLite file for a while, as a
busy server would), so the CRM load lands first; on the other, the core-banking customers are
loaded first (a run of that job alone) and the CRM export after. `silver_customer_master`
must give every customer the same `customer_sk` on both, and keys once given never change
when new customers come (issue 11: with a slower SQL Server source 498 of 500 differed).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from flowforge.demo_data import generate
from tests.conftest import make_settings
from tests.system.conftest import Platform

TEMPLATE = "bfsi-customer-360"


class Bfsi:
    """The template instantiated on a platform of its own (embedded: SQLite, local disk)."""

    def __init__(self, root: Path, generated) -> None:
        from flowforge.app import create_app

        self.settings = make_settings(root)
        self.app = create_app(self.settings)
        self.client = TestClient(self.app).__enter__()
        self.platform = Platform(self.client, self.settings.lake_root)
        sources = Path(self.settings.sqlite_root)
        sources.mkdir(parents=True, exist_ok=True)
        self.core_db = sources / "core.db"
        shutil.copyfile(generated.sqlite, self.core_db)
        headers = self.platform.headers
        with open(generated.crm_csv, "rb") as handle:
            upload = self.client.post(
                "/api/files", files={"file": ("crm.csv", handle, "text/csv")}, headers=headers
            )
        assert upload.status_code == 201, upload.text
        instantiated = self.client.post(
            f"/api/templates/{TEMPLATE}/instantiate",
            json={
                "workflowName": f"bfsi {uuid.uuid4().hex[:6]}",
                "connections": {
                    "coreBanking": {
                        "name": f"core {uuid.uuid4().hex[:6]}",
                        "connection": {"type": "sqlite", "database": self.core_db.name},
                    }
                },
                "files": {"crmCustomers": {"fileId": upload.json()["id"]}},
            },
            headers=headers,
        )
        assert instantiated.status_code == 201, instantiated.text
        self.workflow = instantiated.json()
        jobs = self.client.get(
            f"/api/workflows/{self.workflow['id']}/jobs", headers=headers
        ).json()["data"]
        self.job_ids = {job["name"]: job["id"] for job in jobs}
        # The template names its keys: saving it warns about nothing.
        assert not [job["name"] for job in jobs if "warnings" in job]

    def run(self, jobs: list[str] | None = None, slow_core: float = 0) -> dict:
        """A run (of ``jobs`` by name, else all); ``slow_core`` seconds of a write lock on the
        core-banking file taken before the run starts, so its loads wait for it."""
        released = threading.Event()
        if slow_core:
            lock = sqlite3.connect(self.core_db, isolation_level=None, check_same_thread=False)
            lock.execute("BEGIN EXCLUSIVE")

            def release() -> None:
                time.sleep(slow_core)
                lock.execute("COMMIT")
                lock.close()
                released.set()

            threading.Thread(target=release, daemon=True).start()
        body = {"jobs": [self.job_ids[name] for name in jobs]} if jobs else None
        execution = self.platform.wait(self.platform.start(self.workflow["id"], body))
        if slow_core:
            released.wait(30)
        assert execution["status"] == "succeeded", execution
        return execution

    def loaded_at(self, table: str):
        return self.platform.read("bronze", table)["_ingested_at"].min()

    def keys(self) -> dict[int, int]:
        silver = self.platform.read("silver", "silver_customer_master")
        return dict(
            zip(silver["customer_id"].to_list(), silver["customer_sk"].to_list(), strict=True)
        )

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.app.state.database.dispose()


def test_customer_sk_is_the_same_whichever_ingest_job_finished_first(tmp_path):
    generated = generate(tmp_path / "demo-data")
    crm_first = Bfsi(tmp_path / "crm-first", generated)
    core_first = Bfsi(tmp_path / "core-first", generated)
    try:
        crm_first.run(slow_core=2.5)
        core_first.run(jobs=["Ingest Core Banking Customers"])
        time.sleep(0.01)
        core_first.run()

        # The two platforms did load in different orders.
        assert crm_first.loaded_at("bronze_crm_customers") < crm_first.loaded_at(
            "bronze_core_customers"
        )
        assert core_first.loaded_at("bronze_core_customers") < core_first.loaded_at(
            "bronze_crm_customers"
        )
        keys = crm_first.keys()
        assert len(keys) == 500 and sorted(keys.values()) == list(range(1, 501))
        assert core_first.keys() == keys

        # New customers on both, loaded in the opposite orders again: the keys given stay
        # put, and the new ones are the same on both.
        for bfsi in (crm_first, core_first):
            with sqlite3.connect(bfsi.core_db) as connection:
                template = connection.execute(
                    "SELECT * FROM customers ORDER BY customer_id LIMIT 1"
                ).fetchone()
                columns = [c[1] for c in connection.execute("PRAGMA table_info(customers)")]
                index = {name: i for i, name in enumerate(columns)}
                for new_id in (9003, 9001, 9002):
                    row = list(template)
                    row[index["customer_id"]] = new_id
                    row[index["email"]] = f"new{new_id}@example.com"
                    row[index["modified_date"]] = "2030-01-01 00:00:00.000000"
                    placeholders = ", ".join("?" * len(row))
                    connection.execute(f"INSERT INTO customers VALUES ({placeholders})", row)
        crm_first.run(slow_core=2.5)
        core_first.run()
        again = crm_first.keys()
        assert {k: again[k] for k in keys} == keys
        assert {k: again[k] for k in (9001, 9002, 9003)} == {9001: 501, 9002: 502, 9003: 503}
        assert core_first.keys() == again
    finally:
        crm_first.close()
        core_first.close()

"""Event triggers with real processes: two `flowforge serve` processes on one PostgreSQL,
each with its embedded scheduler, watching one landing folder (and writing one lake). Ten
files dropped while both run start exactly ten runs, each file once, each run reading its
file (the bronze rows are exactly the files' rows, each once)."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter

import pytest
from deltalake import DeltaTable

from tests.system.processes import Server, settled

pytestmark = pytest.mark.postgres


def test_two_serve_processes_start_one_run_per_dropped_file(tmp_path, fresh_postgres_url):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    (landing / "incoming").mkdir(parents=True)
    env = {
        "FLOWFORGE_DATABASE_URL": fresh_postgres_url,
        "FLOWFORGE_AUTO_MIGRATE": "true",
        "FLOWFORGE_LANDING_DIR": str(landing),
        "FLOWFORGE_STORAGE_URL": str(lake),
    }
    servers = []
    for name in ("a", "b"):
        data_dir = tmp_path / name
        data_dir.mkdir()
        servers.append(Server(data_dir, **env).start())  # one after the other: one migrates
    table = f"bronze_drop_{uuid.uuid4().hex[:8]}"
    names = [f"part-{index:02d}.csv" for index in range(10)]
    try:
        with servers[0].client() as client:
            workflow = client.post(
                "/api/workflows", json={"name": "on-arrival", "status": "active"}
            ).json()
            job = client.post(
                f"/api/workflows/{workflow['id']}/jobs",
                json={
                    "name": "Ingest arrivals",
                    "type": "file-based",
                    "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "none.csv"}},
                    "destinationConfig": {"bronzeConfig": {"tableName": table}},
                },
            )
            assert job.status_code == 201, job.text
            created = client.post(
                f"/api/workflows/{workflow['id']}/triggers",
                json={
                    "kind": "event",
                    "settings": {
                        "prefix": "incoming",
                        "pattern": "part-*.csv",
                        "settleSeconds": 1,
                        "pollSeconds": 1,
                    },
                },
            )
            assert created.status_code == 201, created.text
            for index, name in enumerate(names):
                part = landing / "incoming" / f".{name}.tmp"
                part.write_text(f"id,name\n{index},{name}\n")
                os.replace(part, landing / "incoming" / name)
                time.sleep(0.1)

            deadline = time.monotonic() + 180
            while True:
                firings = client.get(
                    f"/api/workflows/{workflow['id']}/firings", params={"limit": 500}
                ).json()["data"]
                if len(firings) >= 10 and all(f["outcome"] == "started" for f in firings):
                    break
                assert time.monotonic() < deadline, Counter(f["outcome"] for f in firings)
                time.sleep(0.5)
            executions = [settled(client, f["executionId"]) for f in firings]
            time.sleep(3)  # a doubled firing, if any, would have been recorded by now
            again = client.get(
                f"/api/workflows/{workflow['id']}/firings", params={"limit": 500}
            ).json()["data"]
            listed = client.get(
                "/api/executions", params={"workflowId": workflow["id"], "limit": 100}
            ).json()["data"]
    finally:
        for server in servers:
            server.stop()

    assert len(again) == 10, again
    assert sorted(f["cause"]["file"]["path"] for f in again) == [f"incoming/{n}" for n in names]
    assert all(e["status"] == "succeeded" and e["trigger"] == "event" for e in executions)
    ours = [e for e in listed if e["workflowId"] == workflow["id"]]
    assert {e["id"] for e in ours} == {f["executionId"] for f in again}
    assert len(ours) == 10
    rows = DeltaTable(str(lake / "bronze" / table)).to_pyarrow_table().to_pylist()
    assert len(rows) == 10
    by_execution = {f["executionId"]: f["cause"]["file"]["path"] for f in again}
    assert {(r["id"], r["name"], r["_source"]) for r in rows} == {
        (index, name, f"incoming/{name}") for index, name in enumerate(names)
    }
    assert all(by_execution[r["_execution_id"]] == r["_source"] for r in rows)

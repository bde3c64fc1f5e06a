"""Automatic table maintenance on real Delta tables: checkpoints every N commits, compaction
that keeps every row exactly once (also when a writer commits in between), and vacuum that
never takes a file of the current version."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from flowforge_shared.lake import Lake, commit_properties
from flowforge_shared.maintenance import (
    CHECKPOINT_INTERVAL,
    MaintenancePolicy,
    maintain_after_write,
    small_files,
)
from flowforge_shared.settings import Settings

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def rows(lo: int, hi: int) -> pa.Table:
    return pa.table(
        {"id": list(range(lo, hi)), "name": [f"n{i}" for i in range(lo, hi)]}, schema=SCHEMA
    )


def content(table: DeltaTable) -> Counter:
    data = table.to_pyarrow_table()
    return Counter(zip(data["id"].to_pylist(), data["name"].to_pylist(), strict=True))


def expected(*ranges: tuple[int, int]) -> Counter:
    return Counter((i, f"n{i}") for lo, hi in ranges for i in range(lo, hi))


def checkpoints(lake: Lake, table: str) -> list[str]:
    log = Path(lake.uri("bronze", table)) / "_delta_log"
    return sorted(name for name in os.listdir(log) if ".checkpoint." in name)


def load_times(lake: Lake, table: str, times: int) -> DeltaTable:
    target = lake.load_or_create("bronze", table, SCHEMA)
    for i in range(times):
        write_deltalake(target, rows(i * 10, i * 10 + 10), mode="append")
    return lake.load("bronze", table)


def test_a_table_the_lake_creates_gets_a_checkpoint_every_n_commits(tmp_path):
    lake = Lake(root=str(tmp_path), checkpoint_interval=3)
    table = load_times(lake, "t", 7)  # versions 0 (create) .. 7
    assert table.metadata().configuration[CHECKPOINT_INTERVAL] == "3"
    assert checkpoints(lake, "t") == [
        "00000000000000000002.checkpoint.parquet",
        "00000000000000000005.checkpoint.parquet",
    ]
    # Read afresh (from the newest checkpoint and the commits after it): the same rows, and
    # the application transaction of a commit before the checkpoint (idempotent retries).
    write_deltalake(
        lake.load("bronze", "t"),
        rows(70, 80),
        mode="append",
        commit_properties=commit_properties("flowforge-job-j", 4, execution_id="e"),
    )
    for _ in range(3):
        write_deltalake(lake.uri("bronze", "t"), rows(0, 0), mode="append")
    fresh = DeltaTable(lake.uri("bronze", "t"))
    assert checkpoints(lake, "t")[-1] == "00000000000000000011.checkpoint.parquet"
    assert content(fresh) == expected((0, 80))
    assert fresh.transaction_version("flowforge-job-j") == 4


def test_a_table_created_before_gets_the_interval_and_a_checkpoint_at_once(tmp_path):
    lake = Lake(root=str(tmp_path))  # no interval: as tables made before the policy
    load_times(lake, "old", 4)
    assert checkpoints(lake, "old") == []
    done = maintain_after_write(lake, "bronze", "old", MaintenancePolicy(checkpoint_interval=5))
    assert done.warnings == []
    table = lake.load("bronze", "old")
    assert table.metadata().configuration[CHECKPOINT_INTERVAL] == "5"
    assert checkpoints(lake, "old") == [f"{table.version():020d}.checkpoint.parquet"]
    assert content(DeltaTable(lake.uri("bronze", "old"))) == expected((0, 40))
    # Already set: the next maintenance makes no commit for it.
    maintain_after_write(lake, "bronze", "old", MaintenancePolicy(checkpoint_interval=5))
    assert lake.load("bronze", "old").version() == table.version()


def test_compaction_reduces_the_file_count_and_keeps_every_row_exactly_once(tmp_path):
    lake = Lake(root=str(tmp_path), checkpoint_interval=10)
    before = load_times(lake, "c", 8)
    assert len(before.file_uris()) == 8
    policy = MaintenancePolicy(compact_min_files=4, vacuum_retention_hours=None)
    done = maintain_after_write(lake, "bronze", "c", policy)
    assert done.done["compact"] == {"filesAdded": 1, "filesRemoved": 8}, done
    after = lake.load("bronze", "c")
    assert len(after.file_uris()) == 1
    assert content(after) == expected((0, 80))
    assert after.history(1)[0]["operation"] == "OPTIMIZE"


def test_few_small_files_are_left_alone(tmp_path):
    lake = Lake(root=str(tmp_path), checkpoint_interval=10)
    table = load_times(lake, "few", 4)
    assert small_files(table, 32 * 1024 * 1024) == 4
    done = maintain_after_write(lake, "bronze", "few", MaintenancePolicy(compact_min_files=4))
    assert "compact" not in done.done
    assert lake.load("bronze", "few").version() == table.version()


class RacingLake(Lake):
    """Hands maintenance a snapshot, then lets another writer commit before maintenance
    does: the race optimistic concurrency must settle."""

    race = None
    loads = 0

    def load(self, layer, table, version=None):
        snapshot = super().load(layer, table, version)
        type(self).loads += 1
        if type(self).loads == 2 and self.race is not None:  # the compaction step's snapshot
            self.race()
        return snapshot


@pytest.fixture
def racing(tmp_path):
    RacingLake.loads = 0
    lake = RacingLake(root=str(tmp_path), checkpoint_interval=100)
    load_times(lake, "r", 6)
    RacingLake.loads = 0
    yield lake
    RacingLake.race = None


def test_an_append_committed_during_compaction_keeps_its_rows(racing):
    RacingLake.race = staticmethod(
        lambda: write_deltalake(racing.uri("bronze", "r"), rows(100, 110), mode="append")
    )
    done = maintain_after_write(racing, "bronze", "r", MaintenancePolicy(compact_min_files=2))
    assert done.warnings == [] and done.done["compact"]["filesRemoved"] == 6
    # The compaction was rebased over the append: every row once, the appended ones too.
    assert content(Lake.load(racing, "bronze", "r")) == expected((0, 60), (100, 110))


def test_a_compaction_that_read_files_an_overwrite_removed_commits_nothing(racing):
    RacingLake.race = staticmethod(
        lambda: write_deltalake(racing.uri("bronze", "r"), rows(500, 505), mode="overwrite")
    )
    done = maintain_after_write(racing, "bronze", "r", MaintenancePolicy(compact_min_files=2))
    assert "compact" not in done.done
    assert len(done.warnings) == 1 and "CommitFailedError" in done.warnings[0], done.warnings
    assert "the write itself is committed" in done.warnings[0]
    # The overwrite stands; no compacted copy of the old rows came back.
    assert content(Lake.load(racing, "bronze", "r")) == expected((500, 505))


def test_vacuum_removes_replaced_files_and_never_a_file_of_the_current_version(tmp_path):
    lake = Lake(root=str(tmp_path), checkpoint_interval=10)
    load_times(lake, "v", 6)
    compact = MaintenancePolicy(compact_min_files=2, vacuum_retention_hours=None)
    maintain_after_write(lake, "bronze", "v", compact)
    table = lake.load("bronze", "v")
    current = {Path(uri).name for uri in table.file_uris()}
    # Retention 0 is below what settings allow; here it shows what vacuum may take at most.
    done = maintain_after_write(lake, "bronze", "v", MaintenancePolicy(vacuum_retention_hours=0))
    assert done.done["vacuum"]["filesRemoved"] == 6
    on_disk = {p.name for p in Path(lake.uri("bronze", "v")).glob("*.parquet")}
    assert on_disk == current
    assert content(DeltaTable(lake.uri("bronze", "v"))) == expected((0, 60))


def test_the_vacuum_retention_is_never_below_the_minimum(tmp_path):
    short = Settings(data_dir=tmp_path, table_vacuum_retention_hours=1, task_time_limit=3600)
    assert MaintenancePolicy.from_settings(short).vacuum_retention_hours == 6
    long_tasks = Settings(data_dir=tmp_path, table_vacuum_retention_hours=8, task_time_limit=36000)
    assert MaintenancePolicy.from_settings(long_tasks).vacuum_retention_hours == 20
    off = Settings(data_dir=tmp_path, table_vacuum_retention_hours=0)
    assert MaintenancePolicy.from_settings(off).vacuum_retention_hours is None
    # With the minimum, files replaced just now stay (a reader of the old version may need them).
    lake = Lake(root=str(tmp_path / "lake"), checkpoint_interval=10)
    load_times(lake, "m", 4)
    policy = MaintenancePolicy.from_settings(short)
    maintain_after_write(lake, "bronze", "m", MaintenancePolicy(compact_min_files=2))
    done = maintain_after_write(lake, "bronze", "m", policy)
    assert "vacuum" not in done.done
    assert len(list(Path(lake.uri("bronze", "m")).glob("*.parquet"))) == 5


def test_runs_maintain_their_tables_and_a_failed_step_is_only_a_note(tmp_path, monkeypatch):
    """Through the API: four append loads of a file give a checkpoint and a compaction; a
    maintenance step that fails leaves the run succeeded, with a note."""
    import time

    from fastapi.testclient import TestClient

    from flowforge.app import create_app
    from tests.conftest import ADMIN_TOKEN, make_settings

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    settings = make_settings(tmp_path, table_checkpoint_interval=3, table_compact_min_files=2)
    landed = settings.data_dir / "landing" / "in.csv"
    landed.parent.mkdir(parents=True, exist_ok=True)
    landed.write_bytes(b"id,name\n1,a\n2,b\n")
    app = create_app(settings)
    with TestClient(app) as api:
        wf = api.post("/api/workflows", json={"name": "maint"}, headers=headers).json()
        job = {
            "name": "Load",
            "type": "file-based",
            "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "in.csv"}},
            "destinationConfig": {"bronzeConfig": {"tableName": "loads", "writeMode": "append"}},
        }
        created = api.post(f"/api/workflows/{wf['id']}/jobs", json=job, headers=headers)
        assert created.status_code == 201, created.text

        def run() -> dict:
            started = api.post(f"/api/workflows/{wf['id']}/run", headers=headers).json()
            for _ in range(300):
                state = api.get(f"/api/executions/{started['executionId']}", headers=headers)
                if state.json()["status"] in ("succeeded", "failed"):
                    return state.json()
                time.sleep(0.1)
            raise AssertionError(state.text)

        for _ in range(4):
            assert run()["status"] == "succeeded"
        lake = Lake.from_settings(settings)
        table = lake.load("bronze", "loads")
        assert checkpoints(lake, "loads")
        assert len(table.file_uris()) < 4
        data = table.to_pyarrow_table()
        assert Counter(zip(data["id"].to_pylist(), data["name"].to_pylist(), strict=True)) == {
            (1, "a"): 4,
            (2, "b"): 4,
        }
        operations = [entry["operation"] for entry in table.history()]
        assert "OPTIMIZE" in operations

        def broken(*_args, **_kwargs):
            raise OSError("disk on fire")

        monkeypatch.setattr(DeltaTable, "vacuum", broken)
        done = run()
        assert done["status"] == "succeeded", done
        assert "vacuum of bronze.loads failed (OSError: disk on fire)" in done["jobs"][0]["note"]
        assert lake.load("bronze", "loads").to_pyarrow_table().num_rows == 10
    app.state.database.dispose()

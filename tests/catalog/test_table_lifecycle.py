"""Table lifecycle through the API (issue 12): Delta history, restore a version, reset, drop,
and maintenance (compaction, checkpoint, vacuum with a retention) — admin only, confirmed by
the table's name, audited."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN, make_settings
from tests.orchestrator.factories import add_active_writer

H = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def api(tmp_path):
    from flowforge.app import create_app

    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:
        client.settings = settings
        client.app_state = app.state
        yield client
    app.state.database.dispose()


def run(api, workflow_id: str) -> None:
    started = api.post(f"/api/workflows/{workflow_id}/run", headers=H).json()
    for _ in range(300):
        state = api.get(f"/api/executions/{started['executionId']}", headers=H).json()
        if state["status"] in ("succeeded", "failed"):
            assert state["status"] == "succeeded", state
            return
        time.sleep(0.1)
    raise AssertionError(state)


@pytest.fixture
def loaded(api):
    """bronze_people loaded three times (append): versions 0 (create) .. 3."""
    landing = Path(api.settings.landing_root)
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "people.csv").write_text("id,name\n1,Ann\n2,Bob\n")
    wf = api.post("/api/workflows", json={"name": "people"}, headers=H).json()
    job = {
        "name": "Ingest",
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "people.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_people"}},
    }
    assert api.post(f"/api/workflows/{wf['id']}/jobs", json=job, headers=H).status_code == 201
    for _ in range(3):
        run(api, wf["id"])
    return wf


def rows(api) -> int:
    return pl.read_delta(f"{api.settings.lake_root}/bronze/bronze_people").height


def url(action: str = "") -> str:
    return f"/api/catalog/assets/bronze_people{action}"


def editor_headers(api) -> dict:
    token = api.post("/api/tokens", json={"name": "ed", "role": "editor"}, headers=H).json()
    return {"Authorization": f"Bearer {token['token']}"}


def test_history_and_restore(api, loaded):
    history = api.get(url("/history"), headers=H)
    assert history.status_code == 200, history.text
    entries = history.json()["data"]
    assert [e["version"] for e in entries] == [3, 2, 1, 0]
    assert entries[0]["operation"] == "WRITE" and entries[0]["executionId"]
    assert rows(api) == 6

    assert (
        api.post(
            url("/restore"),
            json={"version": 1, "confirm": "bronze_people"},
            headers=editor_headers(api),
        ).status_code
        == 403
    )
    wrong = api.post(url("/restore"), json={"version": 1, "confirm": "bronze_peopl"}, headers=H)
    assert wrong.status_code == 422 and "confirm" in wrong.text
    restored = api.post(url("/restore"), json={"version": 1, "confirm": "bronze_people"}, headers=H)
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 4 and restored.json()["restoredTo"] == 1
    assert rows(api) == 2
    asset = api.get(url(), headers=H).json()
    assert asset["version"] == 4 and asset["rowCount"] == 2
    newest = api.get(url("/history"), headers=H).json()["data"][0]
    assert newest["operation"] == "RESTORE" and newest["flowforgeAction"] == "restore"
    log = api.get("/api/audit", params={"entityType": "table"}, headers=H).json()["data"]
    assert log[0]["action"] == "table.restore" and log[0]["entityId"] == "bronze_people"
    before = log[0]["diff"]["before"]
    assert (before["from"], before["to"]) == (3, 1)
    assert log[0]["diff"]["after"]["version"] == 4
    assert (
        api.post(
            url("/restore"), json={"version": 9, "confirm": "bronze_people"}, headers=H
        ).status_code
        == 422
    )


def test_reset_then_drop(api, loaded):
    reset = api.post(url("/reset"), json={"confirm": "bronze_people"}, headers=H)
    assert reset.status_code == 200, reset.text
    assert reset.json()["rowCount"] == 0 and rows(api) == 0
    # The schema and the history stay: the reset is undone by a restore.
    back = api.post(url("/restore"), json={"version": 3, "confirm": "bronze_people"}, headers=H)
    assert back.status_code == 200 and rows(api) == 6

    dropped = api.post(url("/drop"), json={"confirm": "bronze_people"}, headers=H)
    assert dropped.status_code == 200, dropped.text
    assert not Path(f"{api.settings.lake_root}/bronze/bronze_people").exists()
    assert api.get(url(), headers=H).status_code == 404
    assert api.get(url("/history"), headers=H).status_code == 404
    actions = [
        e["action"]
        for e in api.get("/api/audit", params={"entityType": "table"}, headers=H).json()["data"]
    ]
    assert actions[:3] == ["table.drop", "table.restore", "table.reset"]
    # The job that writes it makes it again.
    run(api, loaded["id"])
    assert rows(api) == 2


def test_maintenance_compacts_checkpoints_and_vacuums(api, loaded):
    lake = Path(api.settings.lake_root) / "bronze" / "bronze_people"
    files_before = len(list(lake.glob("*.parquet")))
    assert files_before >= 3
    too_short = api.post(url("/maintenance"), json={"vacuum": {"retentionHours": 1}}, headers=H)
    assert too_short.status_code == 422 and "retentionHours" in too_short.text
    done = api.post(
        url("/maintenance"),
        json={"compact": True, "checkpoint": True, "vacuum": {"retentionHours": 168}},
        headers=H,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["compact"]["filesRemoved"] >= 3 and body["compact"]["filesAdded"] == 1
    assert body["checkpoint"]["version"] == body["version"]
    assert list((lake / "_delta_log").glob("*.checkpoint.parquet"))
    assert body["vacuum"] == {"retentionHours": 168, "filesRemoved": 0}  # all too recent
    assert rows(api) == 6
    log = api.get("/api/audit", params={"entityType": "table"}, headers=H).json()["data"]
    assert log[0]["action"] == "table.maintain"
    assert (
        api.post(
            url("/maintenance"), json={"compact": True}, headers=editor_headers(api)
        ).status_code
        == 403
    )


def test_compaction_of_a_merged_silver_table_keeps_it_clustered(api, monkeypatch):
    """A silver table merged on its key is kept in key ranges so that a merge rewrites only
    the files holding its keys. Compaction on request re-clusters it on the key (as the
    automatic maintenance does) instead of merging its files by size, which would put the
    whole table back into one file that every merge rewrites."""
    from deltalake import DeltaTable

    import flowforge_transform.silver as silver
    from flowforge_shared.lake import Lake
    from flowforge_shared.maintenance import unclustered_files
    from tests.transform.test_silver_pruning import (
        ROWS,
        SMALL_FILES,
        T0,
        T1,
        bronze,
        build,
        content,
        exact_file_ranges,
        expected,
        last_commit_files,
    )

    monkeypatch.setattr(silver, "CLUSTERED_FILE_BYTES", SMALL_FILES)
    lake = Lake.from_settings(api.settings)
    at = lake.uri("silver", "t")
    numbers = list(range(0, 2 * ROWS, 2))
    build(lake, bronze(numbers, "int", version=0, at=T0), "int", 1)
    first_version = DeltaTable(at).version()
    # Updates in every file and new keys between them: the rewritten files overlap.
    changes = {n: 1 for n in range(1, 2 * ROWS, 50)} | {n: 1 for n in numbers[::40]}
    build(lake, bronze(sorted(changes), "int", version=1, at=T1), "int", 2)
    merged = DeltaTable(at)
    merged_version, files_before = merged.version(), len(merged.file_uris())
    want = expected({n: 0 for n in numbers}, changes, "int")
    overlapping, small, _ = unclustered_files(merged, "id")
    assert overlapping + small > 1, "the merge was expected to blur the layout"

    done = api.post("/api/catalog/assets/t/maintenance", json={"compact": True}, headers=H)
    assert done.status_code == 200, done.text
    compact = done.json()["compact"]
    assert compact["clusteredBy"] == ["id"] and compact["filesRemoved"] == files_before, compact
    newest = api.get("/api/catalog/assets/t/history", headers=H).json()["data"][0]
    assert newest["operation"] == "OPTIMIZE" and newest["flowforgeAction"] == "compact"
    # In files of the table's own delta.targetFileSize, not the default of a compaction.
    assert int(newest["operationParameters"]["targetSize"]) == SMALL_FILES, newest

    # The same rows, in files of disjoint key ranges of the table's own target size.
    assert content(DeltaTable(at), "int") == want
    ranges = exact_file_ranges(at, "id")
    assert len(ranges) >= 5
    assert all(ranges[i][2] < ranges[i + 1][1] for i in range(len(ranges) - 1))
    # Time travel still reads what each earlier version held.
    assert content(DeltaTable(at, version=merged_version), "int") == want
    assert content(DeltaTable(at, version=first_version), "int") == expected(
        {n: 0 for n in numbers}, {}, "int"
    )

    # A small merge again rewrites only the file holding its keys.
    path, low, high = ranges[len(ranges) // 2]
    build(lake, bronze([low, high], "int", version=2, at=T1), "int", 3)
    removed, _ = last_commit_files(at)
    assert removed == {path}
    assert DeltaTable(at).count() == sum(want.values())

    # Nothing out of place: a second compaction leaves the table as it is.
    version = DeltaTable(at).version()
    again = api.post("/api/catalog/assets/t/maintenance", json={"compact": True}, headers=H)
    assert again.status_code == 200, again.text
    assert again.json()["compact"] == {"filesAdded": 0, "filesRemoved": 0, "clusteredBy": ["id"]}
    assert DeltaTable(at).version() == version


def test_compaction_of_a_table_merged_before_the_clustered_layout_adopts_it(api):
    """A merge table from before the clustered layout (one file in arrival order, no
    delta.targetFileSize) whose latest merge named its key: compaction on request
    re-clusters it into files of 4 MiB and gives it the property, like maintenance."""
    from deltalake import DeltaTable

    from flowforge_shared.lake import Lake
    from flowforge_shared.maintenance import CLUSTERED_FILE_BYTES, TARGET_FILE_SIZE
    from tests.transform.test_silver_pruning import (
        ROWS,
        T1,
        bronze,
        build,
        content,
        expected,
        merged_the_old_way,
    )

    lake = Lake.from_settings(api.settings)
    at = lake.uri("silver", "t")
    merged_the_old_way(lake)
    changes = {n: 1 for n in range(0, ROWS, 700)}
    build(lake, bronze(sorted(changes), "int", version=1, at=T1), "int", 2)
    want = expected({n: 0 for n in range(ROWS)}, changes, "int")
    version = DeltaTable(at).version()

    done = api.post("/api/catalog/assets/t/maintenance", json={"compact": True}, headers=H)
    assert done.status_code == 200, done.text
    compact = done.json()["compact"]
    assert compact["clusteredBy"] == ["id"] and compact["targetFileSize"] == CLUSTERED_FILE_BYTES
    after = DeltaTable(at)
    assert after.metadata().configuration[TARGET_FILE_SIZE] == str(CLUSTERED_FILE_BYTES)
    assert [entry["operation"] for entry in after.history(2)] == ["SET TBLPROPERTIES", "OPTIMIZE"]
    assert content(after, "int") == want
    assert content(DeltaTable(at, version=version), "int") == want


def test_compaction_of_a_clustered_table_whose_key_another_writer_dropped_is_by_size(api):
    """The latest FlowForge merge named ``id``, then another writer replaced the table's
    schema without it: compaction on request compacts by size (200, every row kept)
    instead of failing on the missing column."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from flowforge_shared.lake import Lake
    from tests.transform.test_silver_pruning import ROWS, T1, bronze, build, merged_the_old_way

    lake = Lake.from_settings(api.settings)
    at = lake.uri("silver", "t")
    merged_the_old_way(lake)
    build(lake, bronze([0, 700], "int", version=1, at=T1), "int", 2)
    other = pa.table({"code": [f"c{n}" for n in range(30)], "n": list(range(30))})
    for part in range(3):  # three small files, no `id`, not a FlowForge commit
        write_deltalake(
            at,
            other.slice(part * 10, 10),
            mode="overwrite" if part == 0 else "append",
            schema_mode="overwrite" if part == 0 else None,
        )
    before = DeltaTable(at)
    assert "id" not in {field.name for field in before.schema().fields}
    assert len(before.file_uris()) == 3 and ROWS > 30

    done = api.post("/api/catalog/assets/t/maintenance", json={"compact": True}, headers=H)
    assert done.status_code == 200, done.text
    compact = done.json()["compact"]
    assert "clusteredBy" not in compact and compact["filesRemoved"] == 3
    after = DeltaTable(at)
    assert len(after.file_uris()) == 1
    assert sorted(after.to_pyarrow_table().column("n").to_pylist()) == list(range(30))


def test_names_that_are_not_tables_are_404(api):
    for name in ("..", "bronze_people", "a.b"):
        assert api.get(f"/api/catalog/assets/{name}/history", headers=H).status_code == 404
    assert api.post(
        "/api/catalog/assets/%2E%2E/drop", json={"confirm": ".."}, headers=H
    ).status_code in (404, 405)


def test_changes_wait_while_a_run_writes_the_table(api, loaded):
    """An execution that writes the table is active (set up in the catalog database, as a
    run stuck waiting for a worker would be): every change is 409 naming it; reads go on."""
    execution_id = add_active_writer(
        api.app_state.database,
        table="bronze_people",
        workflow_id=loaded["id"],
        workflow_name="people",
    )
    for action, body in (
        ("/reset", {"confirm": "bronze_people"}),
        ("/drop", {"confirm": "bronze_people"}),
        ("/restore", {"version": 1, "confirm": "bronze_people"}),
        ("/maintenance", {"compact": True}),
    ):
        refused = api.post(url(action), json=body, headers=H)
        assert refused.status_code == 409, (action, refused.text)
        assert execution_id in refused.json()["detail"]
    assert rows(api) == 6
    assert api.get(url("/history"), headers=H).status_code == 200


def test_sample_rows_of_the_current_version(api, loaded):
    """The web UI's catalog page shows a sample of rows (issue 16): the current version's
    first rows, columns in order, audit columns included; values JSON cannot carry exactly
    as text."""
    viewer = api.post("/api/tokens", json={"name": "v", "role": "viewer"}, headers=H).json()
    answer = api.get(url("/sample?limit=4"), headers={"Authorization": f"Bearer {viewer['token']}"})
    assert answer.status_code == 200, answer.text
    sample = answer.json()
    assert sample["table"] == "bronze_people" and sample["layer"] == "bronze"
    assert sample["columns"][:2] == ["id", "name"] and "_ingested_at" in sample["columns"]
    assert len(sample["rows"]) == 4  # three loads of two rows, the first four
    names = {row[sample["columns"].index("name")] for row in sample["rows"]}
    assert names == {"Ann", "Bob"}
    ingested = sample["rows"][0][sample["columns"].index("_ingested_at")]
    assert isinstance(ingested, str) and ingested[:2] == "20"
    assert api.get("/api/catalog/assets/no_such/sample", headers=H).status_code == 404
    assert api.get(url("/sample?limit=0"), headers=H).status_code == 422

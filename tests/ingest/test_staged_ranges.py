"""The plain functions of a distributed parallel read (docs/connectors.md, "Distributed"):
staged range tables committed into bronze in one commit, a retry that finds that commit
reporting its rows, the staged logs cleaned, a killed range's files found as orphans; and
the range claims on the real Redis of this machine (DB 13)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from flowforge_ingest.bronze import AuditContext, BronzeResult, _Commit, plan_write
from flowforge_ingest.errors import Cancelled
from flowforge_ingest.staged import (
    StagedRange,
    attempt_folder,
    clean_staged,
    commit_staged,
    stage_range,
)
from flowforge_shared.lake import Lake, prior_commit
from tests.conftest import require_service


class Batches:
    def __init__(self, schema: pa.Schema, batches: list[pa.RecordBatch]) -> None:
        self.schema = schema
        self._batches = batches

    def __iter__(self):
        return iter(self._batches)


SOURCE = pa.schema([("id", pa.int64()), ("label", pa.string())])


def rows(ids) -> Batches:
    ids = list(ids)
    batch = pa.RecordBatch.from_pydict({"id": ids, "label": [f"r{i}" for i in ids]}, SOURCE)
    return Batches(SOURCE, [batch.slice(0, len(ids) // 2), batch.slice(len(ids) // 2)])


def audit(execution: str) -> AuditContext:
    return AuditContext(execution_id=execution, job_id="job-1", source="db.t")


def commit_for(execution: str, sequence: int = 1, **metadata) -> _Commit:
    return _Commit("flowforge-job-job-1", sequence, execution, {**metadata})


def staged_run(lake, table, execution, parts, *, sequence=1, attempt=1, mode="append"):
    commit = commit_for(execution, sequence, **{"flowforge.watermark": '{"value": "9"}'})
    plan = plan_write(lake, table, SOURCE, mode, audit(execution), commit)
    if isinstance(plan, BronzeResult):
        return plan, []
    folder = attempt_folder(execution, sequence, attempt)
    staged = [
        stage_range(lake, table, folder, index, rows(ids), plan.target, audit(execution))
        for index, ids in enumerate(parts)
    ]
    return commit_staged(lake, table, plan, staged, mode, commit), staged


def test_staged_ranges_land_in_one_bronze_commit_with_rows_and_watermark(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    execution = str(uuid.uuid4())
    parts = [range(1, 100), range(100, 250), range(250, 251), range(251, 251)]  # one empty
    result, staged = staged_run(lake, "t", execution, parts)
    table = DeltaTable(lake.uri("bronze", "t"))
    assert result.rows_written == 250 and result.version == table.version() == 1  # 0: create
    ids = table.to_pyarrow_table(columns=["id"]).column(0).to_pylist()
    assert sorted(ids) == list(range(1, 251))  # each row exactly once
    assert table.transaction_version("flowforge-job-job-1") == 1
    entry = table.history(1)[0]
    assert entry["flowforge.rows"] == "250" and entry["flowforge.watermark"] == '{"value": "9"}'
    # the files' statistics came along: a reader can skip files by them
    stats = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    assert sorted(stats["num_records"]) == [1, 99, 150]
    # the audit columns are a bronze write's
    audit_ids = set(table.to_pyarrow_table(columns=["_execution_id"]).column(0).to_pylist())
    assert audit_ids == {execution}
    # a retry that finds the commit reports its rows (the history has no row metric)
    prior = prior_commit(table, "flowforge-job-job-1", 1)
    assert prior is not None and prior.rows == 250
    again, _ = staged_run(lake, "t", execution, parts)
    assert again.already_applied is not None and again.rows_written == 250
    assert DeltaTable(lake.uri("bronze", "t")).version() == 1

    touched = clean_staged(lake, "t", attempt_folder(execution, 1, 1), staged)
    assert len(touched) == 4
    for part in staged:
        assert not (Path(lake.uri("bronze", "t")) / part.path / "_delta_log").exists()
    assert sorted(DeltaTable(lake.uri("bronze", "t")).to_pandas()["id"]) == list(range(1, 251))


def test_a_second_commit_of_the_same_staged_ranges_is_refused_as_the_same_run(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    execution = str(uuid.uuid4())
    commit = commit_for(execution)
    plan = plan_write(lake, "t", SOURCE, "append", audit(execution), commit)
    folder = attempt_folder(execution, 1, 1)
    staged = [stage_range(lake, "t", folder, 0, rows(range(10)), plan.target, audit(execution))]
    first = commit_staged(lake, "t", plan, staged, "append", commit)
    # a second coordinator that planned against the same snapshot: one commit, not two
    second = commit_staged(lake, "t", plan, staged, "append", commit_for(execution))
    assert first.already_applied is None and second.already_applied is not None
    assert DeltaTable(lake.uri("bronze", "t")).to_pyarrow_table().num_rows == 10


def test_staged_ranges_add_new_columns_and_overwrite_replaces(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    write_deltalake(lake.uri("bronze", "t"), pa.table({"id": pa.array([0], pa.int64())}))
    execution = str(uuid.uuid4())
    result, _ = staged_run(lake, "t", execution, [range(1, 5), range(5, 9)])
    table = DeltaTable(lake.uri("bronze", "t"))
    got = table.to_pyarrow_table(columns=["id", "label"]).to_pydict()
    assert sorted(zip(got["id"], got["label"], strict=True), key=lambda r: r[0]) == [(0, None)] + [
        (i, f"r{i}") for i in range(1, 9)
    ]
    assert result.rows_written == 8
    over, _ = staged_run(
        lake, "t", str(uuid.uuid4()), [range(20, 23)], sequence=2, mode="overwrite"
    )
    assert sorted(DeltaTable(lake.uri("bronze", "t")).to_pandas()["id"]) == [20, 21, 22]
    assert over.rows_written == 3


def test_a_cancelled_or_failing_range_marks_nothing_done(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    execution = str(uuid.uuid4())
    plan = plan_write(lake, "t", SOURCE, "append", audit(execution), commit_for(execution))
    folder = attempt_folder(execution, 1, 1)
    with pytest.raises(Cancelled):
        stage_range(
            lake, "t", folder, 0, rows(range(10)), plan.target, None, should_stop=lambda: True
        )

    class Failing(Batches):
        def __iter__(self):
            yield rows(range(3))._batches[1]
            raise ValueError("cannot store 'x'")

    with pytest.raises(ValueError, match="cannot store"):
        stage_range(lake, "t", folder, 1, Failing(SOURCE, []), plan.target, audit(execution))
    range_dirs = list((Path(lake.uri("bronze", "t")) / folder).glob("range-*"))
    assert all(not (d / "_delta_log" / "00000000000000000000.json").exists() for d in range_dirs)


def test_a_killed_range_leaves_files_the_orphan_clean_up_removes(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    execution = str(uuid.uuid4())
    result, staged = staged_run(lake, "t", execution, [range(1, 50), range(50, 90)])
    # a range attempt killed midway: a Parquet file in its folder, no log
    killed = Path(lake.uri("bronze", "t")) / attempt_folder(execution, 1, 1) / "range-1-dead"
    killed.mkdir()
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1]}), killed / "part-0.parquet")
    # a redelivered range that finished twice: the unchosen copy is a complete staged table
    folder = attempt_folder(execution, 1, 1)
    extra = stage_range(lake, "t", folder, 1, rows(range(50, 90)), pa.schema(result.schema), None)
    clean_staged(lake, "t", folder, staged)
    assert not (Path(lake.uri("bronze", "t")) / extra.path).exists()
    old = time.time() - 7200
    os.utime(killed / "part-0.parquet", (old, old))
    removed = lake.remove_orphans("bronze", "t", 0)
    assert any("range-1-dead/part-0.parquet" in path for path in removed)
    assert sorted(DeltaTable(lake.uri("bronze", "t")).to_pandas()["id"]) == list(range(1, 90))


def test_staged_range_round_trips_as_json():
    part = StagedRange(3, "flowforge-ranges/e-1-a1/range-3-abc", 12)
    assert StagedRange.from_dict(part.to_dict()) == part


# === claims on the real Redis ==================================================================


@pytest.fixture
def claims():
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    from flowforge_ingest.range_claims import RangeClaims

    client = redis.Redis.from_url("redis://127.0.0.1:6379/13")
    made = RangeClaims(client, str(uuid.uuid4()), 1, 1, ttl=1.5)
    yield made
    made.forget(4)


def test_a_range_is_claimed_once_until_its_claim_expires(claims):
    from flowforge_ingest.range_claims import ClaimKeeper

    assert claims.claim(1, "task-a")
    assert not claims.claim(1, "coordinator")
    assert claims.claim(1, "task-a")  # a redelivery of the same message takes it again
    with ClaimKeeper(claims, 1, "task-a") as keeper:
        time.sleep(3.5)  # past the ttl: kept alive by the keeper
        assert not claims.claim(1, "coordinator") and not keeper.lost
    time.sleep(1.8)  # the holder died (no refresh): the claim expires, anyone may take it
    assert claims.claim(1, "coordinator")
    assert not claims.refresh(1, "task-a")  # and the old holder cannot take it back
    assert claims.holder(1) == "coordinator"


def test_results_first_answer_wins_and_stop_and_rows(claims):
    assert claims.finish(2, {"staged": {"index": 2, "path": "p1", "rows": 5}})
    assert not claims.finish(2, {"staged": {"index": 2, "path": "p2", "rows": 5}})
    claims.finish(3, {"error": "cannot store"})
    assert claims.results() == {
        2: {"staged": {"index": 2, "path": "p1", "rows": 5}},
        3: {"error": "cannot store"},
    }
    claims.add_rows(5)
    claims.add_rows(7)
    assert claims.rows() == 12
    assert not claims.stopped()
    claims.stop()
    assert claims.stopped()

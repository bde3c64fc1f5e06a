"""The bronze writer: one idempotent commit per call, audit columns, drift, cancellation,
quarantine. Tables are read back with deltalake directly."""

from __future__ import annotations

import datetime as dt
import pickle
import threading

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from flowforge_ingest.bronze import (
    AuditContext,
    quarantine_table_name,
    write_bronze,
    write_quarantine,
)
from flowforge_ingest.csv_source import QuarantinedRow, read_csv_batches
from flowforge_ingest.errors import (
    Cancelled,
    ConcurrentWriteError,
    MalformedRowError,
    SchemaDriftError,
)
from flowforge_shared.lake import Lake
from flowforge_shared.runtime import Cancelled as RunCancelled
from tests.ingest.conftest import ArrowSource, file_config, read_table, table_version

ORDERS = "id,customer,amount\n1,ann,10.5\n2,bob,20\n3,cid,30.25\n"
NOTE = "a note long enough to push row 60000 past the first 1 MiB block"


def load_csv(lake, path, *, run_sequence=1, app_id="job-1", table="orders", **kwargs):
    batches = read_csv_batches(path, file_config(), source_name="orders.csv")
    return write_bronze(
        lake,
        table,
        batches,
        mode=kwargs.pop("mode", "append"),
        audit=kwargs.pop("audit", None),
        app_id=app_id,
        run_sequence=run_sequence,
        **kwargs,
    )


def test_append_twice_adds_rows_up(lake, write_csv):
    path = write_csv("orders.csv", ORDERS)
    first = load_csv(lake, path, run_sequence=1)
    second = load_csv(lake, path, run_sequence=2)
    assert (first.rows_written, first.version, first.skipped_as_already_committed) == (
        3,
        0,
        False,
    )
    assert (second.rows_written, second.version) == (3, 1)
    table = read_table(lake, "orders")
    assert sorted(table.column("id").to_pylist()) == [1, 1, 2, 2, 3, 3]
    assert table.schema.field("amount").type == pa.float64()


def test_the_same_run_twice_writes_once_and_reports_the_earlier_commit(lake, write_csv):
    path = write_csv("orders.csv", ORDERS)
    first = load_csv(lake, path, run_sequence=7)
    load_csv(lake, path, run_sequence=8, app_id="another-job")
    again = load_csv(lake, path, run_sequence=7)
    assert again.skipped_as_already_committed is True
    assert (again.rows_written, again.version) == (first.rows_written, first.version)
    assert read_table(lake, "orders").num_rows == 6  # 3 from job-1 once, 3 from another-job
    assert table_version(lake, "orders") == 1
    # An older sequence of the same job is also already covered.
    assert load_csv(lake, path, run_sequence=3).skipped_as_already_committed is True


class StaleLake(Lake):
    """A lake whose first load returns a snapshot taken before a duplicate committed."""

    def load(self, layer, table, version=None):
        stale = getattr(self, "_stale", None)
        if stale is not None:
            object.__setattr__(self, "_stale", None)
            return stale
        return super().load(layer, table, version)


def test_a_duplicate_racing_the_same_run_is_refused_by_the_commit(lake, write_csv):
    path = write_csv("orders.csv", ORDERS)
    load_csv(lake, path, run_sequence=1)
    racing = StaleLake(root=lake.root)
    object.__setattr__(racing, "_stale", lake.load("bronze", "orders"))  # before run 2
    load_csv(lake, path, run_sequence=2)  # the other delivery of run 2 wins the race
    result = load_csv(racing, path, run_sequence=2)
    assert result.skipped_as_already_committed is True
    assert result.version == 1
    assert read_table(lake, "orders").num_rows == 6


def test_overwrite_replaces_rows_and_schema(lake, write_csv):
    load_csv(lake, write_csv("orders.csv", ORDERS), run_sequence=1)
    replacement = write_csv("v2.csv", "id,total\n9,1\n")
    result = load_csv(lake, replacement, run_sequence=2, mode="overwrite")
    table = read_table(lake, "orders")
    assert table.column_names == ["id", "total"]
    assert table.column("id").to_pylist() == [9]
    assert result.schema.names == ["id", "total"]


def test_audit_columns(lake, write_csv):
    path = write_csv("orders.csv", "id,name\n1,a\n2\n3,c\n")  # row 2 is ragged
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    batches = read_csv_batches(path, file_config(malformed_rows="quarantine"))
    write_bronze(
        lake,
        "orders",
        batches,
        audit=AuditContext(
            execution_id="exec-1", job_id="job-1", source="sales/orders.csv", ingested_at=at
        ),
        app_id="job-1",
        run_sequence=1,
    )
    table = read_table(lake, "orders")
    assert table.schema.field("_ingested_at").type == pa.timestamp("us", "UTC")
    assert table.to_pylist() == [
        {
            "id": id_,
            "name": name,
            "_ingested_at": at,
            "_execution_id": "exec-1",
            "_job_id": "job-1",
            "_source": "sales/orders.csv",
            "_source_row": row,
        }
        for id_, name, row in [(1, "a", 1), (3, "c", 3)]
    ]


def test_without_audit_no_audit_column_is_written(lake, write_csv):
    load_csv(lake, write_csv("orders.csv", ORDERS))
    assert read_table(lake, "orders").column_names == ["id", "customer", "amount"]


def test_audit_defaults_to_one_timestamp_per_call_and_numbers_rows_without_source_rows(lake):
    source = ArrowSource(pa.table({"id": [1, 2, 3, 4, 5]}), batch_rows=2)
    before = dt.datetime.now(dt.UTC)
    write_bronze(
        lake,
        "t",
        source,
        audit=AuditContext("e", "j", "db.public.t"),
        app_id="j",
        run_sequence=1,
    )
    table = read_table(lake, "t")
    stamps = set(table.column("_ingested_at").to_pylist())
    assert len(stamps) == 1 and stamps.pop() >= before.replace(microsecond=0)
    assert table.column("_source_row").to_pylist() == [1, 2, 3, 4, 5]
    assert set(table.column("_source").to_pylist()) == {"db.public.t"}


def test_a_source_column_named_like_an_audit_column_is_refused(lake):
    source = ArrowSource(pa.table({"_job_id": ["x"]}))
    with pytest.raises(SchemaDriftError, match="'_job_id'"):
        write_bronze(
            lake, "t", source, audit=AuditContext("e", "j", "s"), app_id="j", run_sequence=1
        )


# --------------------------------------------------------------------------- drift


def write_arrow(lake, table, data: pa.Table, run_sequence, mode="append"):
    return write_bronze(
        lake,
        "t",
        ArrowSource(data),
        mode=mode,
        audit=None,
        app_id="job",
        run_sequence=run_sequence,
    )


def test_drift_adds_new_columns_and_null_fills_missing_ones(lake):
    write_arrow(lake, "t", pa.table({"id": [1], "old": ["x"]}), 1)
    write_arrow(lake, "t", pa.table({"id": [2], "new": [2.5]}), 2)
    table = read_table(lake, "t")
    assert table.column_names == ["id", "old", "new"]
    assert table.to_pylist() == [
        {"id": 1, "old": "x", "new": None},
        {"id": 2, "old": None, "new": 2.5},
    ]


def test_drift_incompatible_type_fails_before_writing_naming_column_and_types(lake):
    write_arrow(lake, "t", pa.table({"id": [1], "amount": pa.array([5], pa.int64())}), 1)
    source = ArrowSource(pa.table({"id": [2], "amount": ["five"]}))
    with pytest.raises(SchemaDriftError) as raised:
        write_bronze(lake, "t", source, audit=None, app_id="job", run_sequence=2)
    message = str(raised.value)
    assert "'amount'" in message and "integer (int64)" in message and "string" in message
    assert (raised.value.table_type, raised.value.source_type) == ("integer (int64)", "string")
    assert source.iterated == 0  # refused before reading a single batch
    assert table_version(lake, "t") == 0
    assert pickle.loads(pickle.dumps(raised.value)).column == "amount"


@pytest.mark.parametrize(
    "table_type, source_values, expected",
    [
        (pa.int64(), pa.array([7], pa.int32()), [1, 7]),
        (pa.float64(), pa.array([7], pa.int64()), [1.0, 7.0]),
        (pa.string(), pa.array([7], pa.int64()), ["1", "7"]),
        (pa.int64(), pa.nulls(1), [1, None]),
    ],
)
def test_drift_safe_widenings_are_cast(lake, table_type, source_values, expected):
    write_arrow(lake, "t", pa.table({"v": pa.array([1]).cast(table_type)}), 1)
    write_arrow(lake, "t", pa.table({"v": source_values}), 2)
    table = DeltaTable(lake.uri("bronze", "t")).to_pyarrow_table()
    assert sorted(table.column("v").to_pylist(), key=lambda v: (v is None, v)) == expected


def test_drift_narrowing_is_refused(lake):
    write_arrow(lake, "t", pa.table({"v": pa.array([1], pa.int32())}), 1)
    with pytest.raises(SchemaDriftError, match=r"int32.*int64"):
        write_arrow(lake, "t", pa.table({"v": pa.array([1], pa.int64())}), 2)


# --------------------------------------------------------------------------- progress, stop


def test_on_batch_reports_each_batch(lake):
    seen = []
    write_bronze(
        lake,
        "t",
        ArrowSource(pa.table({"id": list(range(5))}), batch_rows=2),
        audit=None,
        app_id="j",
        run_sequence=1,
        on_batch=seen.append,
    )
    assert seen == [2, 2, 1]


@pytest.mark.parametrize("stop_after", [0, 1, 3])
def test_should_stop_cancels_and_commits_nothing(lake, stop_after):
    write_arrow(lake, "t", pa.table({"id": [0]}), 1)
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > stop_after

    with pytest.raises(Cancelled) as raised:
        write_bronze(
            lake,
            "t",
            ArrowSource(pa.table({"id": list(range(1, 6))}), batch_rows=2),
            audit=None,
            app_id="j",
            run_sequence=2,
            should_stop=should_stop,
        )
    assert isinstance(raised.value, RunCancelled)
    assert table_version(lake, "t") == 0
    assert read_table(lake, "t").column("id").to_pylist() == [0]


def test_a_source_error_mid_stream_commits_nothing_and_surfaces_as_is(lake, write_csv):
    lines = "\n".join(f"{i},{i},{NOTE}" for i in range(1, 60_001))
    path = write_csv("orders.csv", f"id,amount,note\n{lines}\n60001,oops,{NOTE}\n")
    with pytest.raises(MalformedRowError, match="row 60001"):
        write_bronze(
            lake,
            "orders",
            read_csv_batches(path, file_config(), batch_rows=5_000),
            audit=None,
            app_id="j",
            run_sequence=1,
        )
    assert table_version(lake, "orders") is None


# --------------------------------------------------------------------------- quarantine

DEEP_BAD = 60_000


def deep_bad_file(write_csv):
    lines = [f"{i},{'bad' if i == DEEP_BAD else i},{NOTE}" for i in range(1, 70_001)]
    lines.insert(100, "ragged")  # becomes data row 101
    path = write_csv("orders.csv", "id,amount,note\n" + "\n".join(lines) + "\n")
    assert path.stat().st_size * DEEP_BAD / 70_000 > 2 * (1 << 20)
    return path


def test_quarantine_policy_loads_good_rows_and_records_bad_ones(lake, write_csv):
    path = deep_bad_file(write_csv)
    batches = read_csv_batches(path, file_config(malformed_rows="quarantine"), batch_rows=8_000)
    result = write_bronze(
        lake,
        "orders",
        batches,
        audit=AuditContext("e1", "j", "orders.csv"),
        app_id="j",
        run_sequence=1,
    )
    assert result.rows_written == 69_999
    quarantine = write_quarantine(
        lake, "orders", batches.quarantined, execution_id="e1", app_id="j", run_sequence=1
    )
    assert quarantine.rows_written == 2
    table = read_table(lake, "orders")
    assert table.schema.field("amount").type == pa.int64()
    rows = set(table.column("_source_row").to_pylist())
    assert 101 not in rows and DEEP_BAD + 1 not in rows and len(rows) == 69_999
    bad = DeltaTable(lake.uri("bronze", quarantine_table_name("orders"))).to_pyarrow_table()
    bad = bad.sort_by("source_row")
    assert bad.column_names == [
        "raw_line",
        "source_row",
        "reason",
        "execution_id",
        "quarantined_at",
    ]
    assert bad.column("source_row").to_pylist() == [101, DEEP_BAD + 1]
    assert bad.column("raw_line").to_pylist() == ["ragged", f"{DEEP_BAD},bad,{NOTE}"]
    assert "expected 3 fields, found 1" in bad.column("reason")[0].as_py()
    assert "column 'amount'" in bad.column("reason")[1].as_py()
    assert set(bad.column("execution_id").to_pylist()) == {"e1"}
    again = write_quarantine(
        lake, "orders", batches.quarantined, execution_id="e1", app_id="j", run_sequence=1
    )
    assert again.skipped_as_already_committed and again.rows_written == 2
    assert DeltaTable(lake.uri("bronze", "orders__quarantine")).to_pyarrow_table().num_rows == 2


def test_fail_policy_on_the_same_file_commits_nothing(lake, write_csv):
    path = deep_bad_file(write_csv)
    with pytest.raises(MalformedRowError, match="row 101"):
        write_bronze(
            lake,
            "orders",
            read_csv_batches(path, file_config(), batch_rows=8_000),
            audit=None,
            app_id="j",
            run_sequence=1,
        )
    assert table_version(lake, "orders") is None


def test_write_quarantine_with_no_records_writes_nothing(lake):
    result = write_quarantine(lake, "orders", [], execution_id="e", app_id="j", run_sequence=1)
    assert result.rows_written == 0 and result.version is None
    assert table_version(lake, "orders__quarantine") is None
    records = [QuarantinedRow(source_row=None, raw_line="x", reason="r")]
    write_quarantine(lake, "orders", records, execution_id="e", app_id="j", run_sequence=2)
    assert (
        DeltaTable(lake.uri("bronze", "orders__quarantine"))
        .to_pyarrow_table()
        .to_pylist()[0]["source_row"]
        is None
    )


def test_no_helper_thread_outlives_a_cancelled_write(lake, write_csv):
    lines = "\n".join(f"{i},{i},{NOTE}" for i in range(1, 50_001))
    path = write_csv("orders.csv", f"id,amount,note\n{lines}\n")
    with pytest.raises(Cancelled):
        write_bronze(
            lake,
            "orders",
            read_csv_batches(path, file_config(), batch_rows=1_000),
            audit=None,
            app_id="j",
            run_sequence=1,
            should_stop=iter([False, False, True]).__next__,
        )
    assert not [t for t in threading.enumerate() if t.name == "flowforge-prefetch"]
    assert table_version(lake, "orders") is None


def test_a_header_only_file_creates_an_empty_table_with_its_columns(lake, write_csv):
    result = load_csv(lake, write_csv("orders.csv", "id,customer\n"))
    assert (result.rows_written, result.version) == (0, 0)
    table = read_table(lake, "orders")
    assert table.num_rows == 0 and table.column_names == ["id", "customer"]


def test_a_concurrent_schema_change_is_a_transient_error(lake):
    write_arrow(lake, "t", pa.table({"id": [1]}), 1)
    racing = StaleLake(root=lake.root)
    object.__setattr__(racing, "_stale", lake.load("bronze", "t"))
    write_bronze(  # another job adds a column meanwhile
        lake,
        "t",
        ArrowSource(pa.table({"id": [2], "extra": ["x"]})),
        audit=None,
        app_id="other-job",
        run_sequence=1,
    )
    with pytest.raises(ConcurrentWriteError) as raised:
        write_bronze(
            racing,
            "t",
            ArrowSource(pa.table({"id": [3]})),
            audit=None,
            app_id="job",
            run_sequence=2,
        )
    assert raised.value.retryable is True
    assert read_table(lake, "t").num_rows == 2

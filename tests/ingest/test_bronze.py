"""The bronze writer: one idempotent commit per call, audit columns, drift, cancellation,
quarantine. Tables are read back with deltalake directly."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import threading
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from flowforge_ingest.bronze import (
    AuditContext,
    delta_storage_schema,
    iso_interval,
    quarantine_table_name,
    to_delta_storage,
    write_bronze,
    write_quarantine,
)
from flowforge_ingest.connectors.arrowing import parse_iso_interval
from flowforge_ingest.csv_source import QuarantinedRow, read_csv_batches
from flowforge_ingest.errors import (
    Cancelled,
    ConcurrentWriteError,
    MalformedRowError,
    SchemaDriftError,
)
from flowforge_runtime.job import Cancelled as RunCancelled
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import Lake, StaleRunError
from tests.ingest.conftest import (
    ArrowSource,
    data_commits,
    file_config,
    read_table,
    table_version,
)

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
        1,  # version 0 is the empty table the first load creates
        False,
    )
    assert (second.rows_written, second.version) == (3, 2)
    table = read_table(lake, "orders")
    assert sorted(table.column("id").to_pylist()) == [1, 1, 2, 2, 3, 3]
    assert pa.types.is_decimal(table.schema.field("amount").type)  # fixed-point: exact


def test_the_same_run_twice_writes_once_and_reports_the_earlier_commit(lake, write_csv):
    path = write_csv("orders.csv", ORDERS)
    first = load_csv(lake, path, run_sequence=7, execution_id="exec-7")
    load_csv(lake, path, run_sequence=8, app_id="another-job")
    again = load_csv(lake, path, run_sequence=7, execution_id="exec-7")
    assert again.skipped_as_already_committed is True
    assert (again.rows_written, again.version) == (first.rows_written, first.version)
    assert again.already_applied.execution_id == "exec-7"
    assert again.already_applied.rows == 3
    assert read_table(lake, "orders").num_rows == 6  # 3 from job-1 once, 3 from another-job
    assert table_version(lake, "orders") == 2
    # An older sequence of the same job is stale: refused, never reported as written.
    with pytest.raises(StaleRunError, match=r"later run \(execution exec-7, run 7\)"):
        load_csv(lake, path, run_sequence=3)
    assert read_table(lake, "orders").num_rows == 6


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
    assert result.version == 2
    assert read_table(lake, "orders").num_rows == 6


class AbsentOnceLake(Lake):
    """A lake whose first look at a table finds nothing: the duplicate delivery that
    creates the table commits between our look and our write."""

    def load(self, layer, table, version=None):
        if not getattr(self, "_looked", False):
            object.__setattr__(self, "_looked", True)
            return None
        return super().load(layer, table, version)


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_a_duplicate_that_created_the_table_first_is_found_not_doubled(lake, write_csv, mode):
    path = write_csv("orders.csv", ORDERS)
    racing = AbsentOnceLake(root=lake.root)
    load_csv(lake, path, run_sequence=1, execution_id="exec-1", mode=mode)  # wins the race
    result = load_csv(racing, path, run_sequence=1, execution_id="exec-1", mode=mode)
    assert result.already_applied is not None
    assert (result.already_applied.execution_id, result.rows_written) == ("exec-1", 3)
    assert read_table(lake, "orders").num_rows == 3
    assert table_version(lake, "orders") == 1


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


def test_a_load_lacking_table_columns_names_them_in_its_commit(lake):
    def load(data, run):
        write_bronze(
            lake,
            "t",
            ArrowSource(data),
            audit=AuditContext(f"e{run}", "j", "s"),
            app_id="j",
            run_sequence=run,
        )

    load(pa.table({"id": [1], "name": ["Ann"], "city": ["Oslo"]}), 1)
    load(pa.table({"id": [2], "city": ["Rome"]}), 2)
    load(pa.table({"id": [3], "name": ["Cy"], "city": ["Lima"]}), 3)
    history = DeltaTable(lake.uri("bronze", "t")).history()
    recorded = [commit.get("flowforge.absent_columns") for commit in history[:3]]
    assert recorded[0] is None and recorded[2] is None
    assert json.loads(recorded[1]) == {"executionId": "e2", "jobId": "j", "columns": ["name"]}


def test_drift_incompatible_type_fails_before_writing_naming_column_and_types(lake):
    write_arrow(lake, "t", pa.table({"id": [1], "amount": pa.array([5], pa.int64())}), 1)
    source = ArrowSource(pa.table({"id": [2], "amount": ["five"]}))
    with pytest.raises(SchemaDriftError) as raised:
        write_bronze(lake, "t", source, audit=None, app_id="job", run_sequence=2)
    message = str(raised.value)
    assert "'amount'" in message and "integer (int64)" in message and "string" in message
    assert (raised.value.table_type, raised.value.source_type) == ("integer (int64)", "string")
    assert source.iterated == 0  # refused before reading a single batch
    assert table_version(lake, "t") == 1
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


@pytest.mark.parametrize(
    "table_type, source_type, value, widened",
    [
        (pa.int32(), pa.int64(), 2**40, pa.int64()),
        (pa.int8(), pa.int16(), 300, pa.int16()),
        (pa.float32(), pa.float64(), 1e300, pa.float64()),
        (pa.decimal128(6, 2), pa.decimal128(7, 2), Decimal("12345.67"), pa.decimal128(7, 2)),
        (pa.decimal128(6, 2), pa.decimal128(5, 3), Decimal("12.345"), pa.decimal128(7, 3)),
    ],
)
def test_a_wider_source_type_widens_the_table_in_one_commit(
    lake, table_type, source_type, value, widened
):
    first = pa.array([Decimal("8996.40")] if pa.types.is_decimal(table_type) else [1])
    write_arrow(lake, "t", pa.table({"v": first.cast(table_type), "k": ["a"]}), 1)
    result = write_arrow(lake, "t", pa.table({"v": pa.array([value], source_type), "k": ["b"]}), 2)
    table = DeltaTable(lake.uri("bronze", "t"))
    assert pa.schema(table.schema().to_arrow()).field("v").type == widened
    rows = {row["k"]: row["v"] for row in table.to_pyarrow_table().to_pylist()}
    assert rows == {"a": first.cast(table_type)[0].as_py(), "b": value}
    # versions: 0 create, 1 first load, 2 the rewrite (widened, same rows), 3 the append
    history = table.history()
    assert [h["operation"] for h in history[:3]] == ["WRITE", "WRITE", "WRITE"]
    assert "flowforge.widened" in history[1] and table.version() == 3
    assert DeltaTable(lake.uri("bronze", "t"), version=2).to_pyarrow_table().num_rows == 1
    assert len(result.notes) == 1 and "v: " in result.notes[0] and "widened" in result.notes[0]


def test_drift_narrowing_and_unsafe_changes_are_refused(lake):
    write_arrow(lake, "t", pa.table({"v": pa.array([1], pa.int64())}), 1)
    with pytest.raises(SchemaDriftError, match=r"int64.*float"):
        write_arrow(lake, "t", pa.table({"v": pa.array([1.5], pa.float32())}), 2)


def test_a_decimal_that_would_need_more_than_38_digits_is_refused(lake):
    write_arrow(lake, "t", pa.table({"d": pa.array([1], pa.decimal128(38, 0))}), 1)
    with pytest.raises(SchemaDriftError, match=r"decimal\(38,0\).*decimal\(38,2\)"):
        write_arrow(lake, "t", pa.table({"d": pa.array([1], pa.decimal128(38, 2))}), 2)


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
    assert table_version(lake, "t") == 1
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
    assert data_commits(lake, "orders") == 0


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
    assert data_commits(lake, "orders") == 0


def test_write_quarantine_with_no_records_writes_nothing(lake):
    result = write_quarantine(lake, "orders", [], execution_id="e", app_id="j", run_sequence=1)
    assert result.rows_written == 0 and result.version is None
    assert table_version(lake, "orders__quarantine") is None  # never created
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
    assert data_commits(lake, "orders") == 0


def test_a_header_only_file_creates_an_empty_table_with_its_columns(lake, write_csv):
    result = load_csv(lake, write_csv("orders.csv", "id,customer\n"))
    assert (result.rows_written, result.version) == (0, 1)
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


# --------------------------------------------------------------------------- Delta storage

NS = pa.timestamp("ns")
NS_UTC = pa.timestamp("ns", tz="UTC")
US, US_UTC = pa.timestamp("us"), pa.timestamp("us", tz="UTC")
MDN = pa.month_day_nano_interval()


def element_list(item: pa.DataType) -> pa.DataType:
    return pa.list_(pa.field("element", item))  # Delta names a list's item "element"


@pytest.mark.parametrize(
    ("source", "stored_type", "stored_values"),
    [
        (pa.array([0, 255, None], pa.uint8()), pa.int16(), [0, 255, None]),
        (pa.array([0, 65535, None], pa.uint16()), pa.int32(), [0, 65535, None]),
        (pa.array([0, 2**32 - 1, None], pa.uint32()), pa.int64(), [0, 2**32 - 1, None]),
        (
            pa.array([0, 2**64 - 1, None], pa.uint64()),
            pa.decimal128(20, 0),
            [Decimal(0), Decimal(2**64 - 1), None],
        ),
        (
            pa.array([0, 86_399_999_999, None], pa.time64("us")),
            pa.string(),
            ["00:00:00.000000", "23:59:59.999999", None],
        ),
        (
            pa.array([1, 86_399_999_999_999, None], pa.time64("ns")),
            pa.string(),
            ["00:00:00.000000001", "23:59:59.999999999", None],
        ),
        (pa.array([0, 86_399, None], pa.time32("s")), pa.string(), ["00:00:00", "23:59:59", None]),
        (
            pa.array([5, None, 0], pa.time32("ms")),
            pa.string(),
            ["00:00:00.005", None, "00:00:00.000"],
        ),
        (
            pa.array([-3_019_199_000_000, 1, None], pa.duration("us")),
            pa.int64(),
            [-3_019_199_000_000, 1, None],
        ),
        (pa.array([2, None, -1], pa.duration("s")), pa.int64(), [2_000_000, None, -1_000_000]),
        (pa.array([7_000, None, 0], pa.duration("ns")), pa.int64(), [7, None, 0]),
        (
            pa.array(
                [pa.MonthDayNano([14, 3, 14_706_500_000_000]), pa.MonthDayNano([0, 0, 0]), None],
                MDN,
            ),
            pa.string(),
            ["P1Y2M3DT4H5M6.5S", "PT0S", None],
        ),
        (
            pa.array([1, None, -1], pa.timestamp("ms", tz="Europe/Berlin")),
            US_UTC,
            [
                dt.datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=dt.UTC),
                None,
                dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC),
            ],
        ),
        (
            pa.array([[0, 255], None, []], pa.list_(pa.uint8())),
            element_list(pa.int16()),
            [[0, 255], None, []],
        ),
        (
            pa.array([[-1], [None], None], pa.list_(NS)),
            element_list(pa.string()),
            [["1969-12-31T23:59:59.999999999"], [None], None],
        ),
        (
            pa.array([[1], None, [None]], pa.list_(pa.duration("us"))),
            element_list(pa.int64()),
            [[1], None, [None]],
        ),
        (
            pa.array(
                [{"n": 4_294_967_295, "t": 1}, None, {"n": None, "t": None}],
                pa.struct([("n", pa.uint32()), ("t", pa.time64("us"))]),
            ),
            pa.struct([("n", pa.int64()), ("t", pa.string())]),
            [{"n": 4_294_967_295, "t": "00:00:00.000001"}, None, {"n": None, "t": None}],
        ),
    ],
    ids=lambda value: str(value.type) if isinstance(value, pa.Array) else None,
)
def test_types_delta_cannot_hold_are_stored_exactly(lake, source, stored_type, stored_values):
    # One row per batch: every value is converted on its own slice of the source arrays.
    source_table = pa.table({"id": [1, 2, 3], "v": source})
    write_bronze(lake, "t", ArrowSource(source_table, 1), audit=None, app_id="j", run_sequence=1)
    table = read_table(lake, "t")
    assert table.schema.field("v").type == stored_type
    assert table.column("v").to_pylist() == stored_values
    declared = delta_storage_schema(source_table.schema).field("v").type
    assert pa.types.is_list(declared) or declared == stored_type  # list item names differ
    # A converted column says so in its Delta comment; a timestamp only changed its unit.
    metadata = DeltaTable(lake.uri("bronze", "t")).schema().fields[1].metadata
    assert ("comment" in metadata) is not pa.types.is_timestamp(stored_type)


def test_nanosecond_timestamps_keep_every_digit_in_a_sibling_column(lake):
    values = [-1, 1_709_987_696_123_456_789, None, 0]  # 1969 edge, 2024-03-09, null, epoch
    source = pa.table(
        {"id": [1, 2, 3, 4], "at": pa.array(values, NS), "utc": pa.array(values, NS_UTC)}
    )
    write_bronze(lake, "t", ArrowSource(source), audit=None, app_id="j", run_sequence=1)
    table = read_table(lake, "t")
    assert table.column_names == ["id", "at", "at__ns", "utc", "utc__ns"]
    assert [table.schema.field(name).type for name in table.column_names[1:]] == [
        US,
        pa.string(),
        US_UTC,
        pa.string(),
    ]
    assert table.column("at").to_pylist() == [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),  # rounded down, not toward 1970
        dt.datetime(2024, 3, 9, 12, 34, 56, 123456),
        None,
        dt.datetime(1970, 1, 1),
    ]
    assert table.column("at__ns").to_pylist() == [
        "1969-12-31T23:59:59.999999999",
        "2024-03-09T12:34:56.123456789",
        None,
        "1970-01-01T00:00:00.000000000",
    ]
    assert table.column("utc").to_pylist()[1] == dt.datetime(
        2024, 3, 9, 12, 34, 56, 123456, tzinfo=dt.UTC
    )
    assert table.column("utc__ns").to_pylist()[1] == "2024-03-09T12:34:56.123456789Z"
    # The exact text sorts as the instants do.
    exact = [text for text in table.column("at__ns").to_pylist() if text]
    assert sorted(exact) == [exact[0], exact[2], exact[1]]


def test_a_zoned_nanosecond_timestamp_is_stored_as_its_utc_instant(lake):
    berlin = pa.array([1_700_000_000_000_000_001], pa.timestamp("ns", tz="Europe/Berlin"))
    write_bronze(
        lake, "t", ArrowSource(pa.table({"at": berlin})), audit=None, app_id="j", run_sequence=1
    )
    row = read_table(lake, "t").to_pylist()[0]
    assert row["at"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert row["at__ns"] == "2023-11-14T22:13:20.000000001Z"


def test_a_second_run_stores_the_same_columns_without_a_schema_change(lake):
    zoo = pa.table(
        {
            "id": pa.array([1, 2], pa.uint8()),
            "big": pa.array([2**64 - 1, None], pa.uint64()),
            "at": pa.array([1, None], NS),
            "tm": pa.array([1, None], pa.time64("ns")),
            "wait": pa.array([1, None], pa.duration("us")),
            "every": pa.array([pa.MonthDayNano([1, 0, 0]), None], MDN),
            "tags": pa.array([[1], None], pa.list_(pa.uint16())),
        }
    )
    audit = AuditContext("e", "j", "db.zoo")
    write_bronze(lake, "t", ArrowSource(zoo, 1), audit=audit, app_id="j", run_sequence=1)
    first = DeltaTable(lake.uri("bronze", "t")).schema().to_arrow()
    second = write_bronze(lake, "t", ArrowSource(zoo, 2), audit=audit, app_id="j", run_sequence=2)
    after = DeltaTable(lake.uri("bronze", "t"))
    assert second.rows_written == 2 and after.count() == 4
    assert pa.schema(after.schema().to_arrow()).equals(pa.schema(first), check_metadata=True)
    assert [entry["operation"] for entry in after.history()] == ["WRITE", "WRITE", "CREATE TABLE"]
    assert "metaData" not in _log_actions(lake, "t", 1)  # the second commit kept the schema


def _log_actions(lake, table, version) -> set[str]:
    import json
    from pathlib import Path

    log = Path(lake.uri("bronze", table)) / "_delta_log" / f"{version:020d}.json"
    return {key for line in log.read_text().splitlines() for key in json.loads(line)}


def test_a_source_column_named_like_a_nanosecond_sibling_is_refused(lake):
    source = ArrowSource(pa.table({"at": pa.array([1], NS), "at__ns": ["mine"]}))
    with pytest.raises(SchemaDriftError, match="'at__ns'.*'at'") as raised:
        write_bronze(lake, "t", source, audit=None, app_id="j", run_sequence=1)
    assert raised.value.column == "at__ns"
    assert source.iterated == 0
    assert data_commits(lake, "t") == 0


def test_a_duration_finer_than_a_microsecond_fails_naming_the_column(lake):
    source = ArrowSource(pa.table({"wait": pa.array([1_000, 1_001], pa.duration("ns"))}))
    with pytest.raises(PermanentError, match="column 'wait'.*microsecond"):
        write_bronze(lake, "t", source, audit=None, app_id="j", run_sequence=1)
    assert data_commits(lake, "t") == 0


def test_a_stored_unsigned_column_accepts_the_next_run_and_widens_for_a_wider_one(lake):
    write_arrow(lake, "t", pa.table({"v": pa.array([255], pa.uint8())}), 1)
    write_arrow(lake, "t", pa.table({"v": pa.array([7], pa.int8())}), 2)  # int8 fits int16
    assert sorted(read_table(lake, "t").column("v").to_pylist()) == [7, 255]
    # uint16 is stored as int32: the int16 column is widened, every value kept
    write_arrow(lake, "t", pa.table({"v": pa.array([65535], pa.uint16())}), 3)
    table = read_table(lake, "t")
    assert table.schema.field("v").type == pa.int32()
    assert sorted(table.column("v").to_pylist()) == [7, 255, 65535]


def test_a_batch_delta_holds_as_it_is_is_not_copied():
    batch = pa.record_batch({"id": [1], "name": ["a"], "at": pa.array([1], US)})
    assert to_delta_storage(batch) is batch
    assert delta_storage_schema(batch.schema) == batch.schema


@pytest.mark.parametrize(
    ("months", "days", "nanoseconds", "text"),
    [
        (0, 0, 0, "PT0S"),
        (14, 3, 14_706_500_000_000, "P1Y2M3DT4H5M6.5S"),
        (-14, 0, 0, "P-1Y-2M"),
        (1, -1, 0, "P1M-1D"),
        (0, 0, -1_000_000_000, "PT-1S"),
        (0, 0, -3_600_500_000_000, "PT-1H-0.5S"),
        (0, 0, 1, "PT0.000000001S"),
        (12, 0, 60 * 10**9, "P1YT1M"),
    ],
)
def test_intervals_are_iso_8601_durations_postgres_reads_back(months, days, nanoseconds, text):
    assert iso_interval(months, days, nanoseconds) == text
    assert tuple(parse_iso_interval(text)) == (months, days, nanoseconds)


def test_list_columns_append_on_the_next_run_though_delta_renames_their_item(lake):
    # Delta reads a list back as list<element: ...>; the source sends list<item: ...>.
    write_arrow(lake, "t", pa.table({"tags": pa.array([[1, None]], pa.list_(pa.int32()))}), 1)
    write_arrow(lake, "t", pa.table({"tags": pa.array([[2], None], pa.list_(pa.int16()))}), 2)
    values = read_table(lake, "t").column("tags").to_pylist()
    assert sorted(values, key=str) == [None, [1, None], [2]]
    with pytest.raises(SchemaDriftError, match="'tags'"):
        write_arrow(lake, "t", pa.table({"tags": pa.array([["x"]])}), 3)


def test_a_decimal_column_becomes_exact_text_when_the_source_sends_numbers_as_text(lake):
    # A table loaded when PostgreSQL's unconstrained numeric was read as decimal(38,10).
    old = pa.array([Decimal("1.5")], pa.decimal128(38, 10))
    write_arrow(lake, "t", pa.table({"n": old}), 1)
    text = pa.field("n", pa.string(), metadata={"flowforge.source_type": "numeric"})
    source = pa.table({"n": pa.array(["1" + "0" * 40], pa.string())}, schema=pa.schema([text]))
    result = write_arrow(lake, "t", source, 2)
    table = DeltaTable(lake.uri("bronze", "t"))
    field = pa.schema(table.schema().to_arrow()).field("n")
    assert field.type == pa.string() and field.metadata[b"flowforge.source_type"] == b"numeric"
    assert sorted(table.to_pyarrow_table().column("n").to_pylist()) == [
        "1.5000000000",
        "1" + "0" * 40,
    ]
    assert "n: decimal(38,10) -> string" in result.notes[0]
    # a plain text column is not a number: it is refused as before
    write_arrow(lake, "t", pa.table({"m": old}), 3)
    with pytest.raises(SchemaDriftError, match="'m'"):
        write_arrow(lake, "t", pa.table({"m": ["x"]}), 4)

"""Silver builds (dedupe, merge/overwrite/append, surrogate keys, retry safety) and the
multi-table input reader. Tables are read back with deltalake directly, not through the code
under test."""

from __future__ import annotations

import sys
import types
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from flowforge_shared.contracts.jobs import DerivedColumn, SilverConfig
from flowforge_shared.lake import Lake, StaleRunError
from flowforge_transform.inputs import TransformError, read_union
from flowforge_transform.silver import HIGH_WATER_KEY, build_silver

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(root=str(tmp_path / "lake"))


def bronze(rows: list[dict], *, at: datetime = T0, first_row: int = 1) -> pa.Table:
    """Rows as the ingest worker leaves them: source columns plus the audit columns."""
    table = pa.Table.from_pylist(rows)
    n = table.num_rows
    audit = {
        "_ingested_at": pa.array([at] * n, pa.timestamp("us", tz="UTC")),
        "_execution_id": pa.array(["exec-bronze"] * n),
        "_job_id": pa.array(["job-bronze"] * n),
        "_source": pa.array(["customers.csv"] * n),
        "_source_row": pa.array(range(first_row, first_row + n), pa.int64()),
    }
    for name, column in audit.items():
        table = table.append_column(name, column)
    return table


def config(**overrides) -> SilverConfig:
    return SilverConfig.model_validate({"tableName": "customers", "primaryKey": "id", **overrides})


def build(lake: Lake, rows: pa.Table, cfg: SilverConfig, run: int, *, derived=None, filters=None):
    return build_silver(
        lake,
        rows,
        cfg,
        derived,
        filters,
        app_id="job-silver",
        run_sequence=run,
        execution_id=f"exec-{run}",
    )


def stored(lake: Lake, table: str = "customers", layer: str = "silver") -> list[dict]:
    rows = DeltaTable(f"{lake.root}/{layer}/{table}").to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda row: str(row.get("id")))


def by_id(rows: list[dict], column: str) -> dict:
    return {row["id"]: row[column] for row in rows}


# --- dedupe -----------------------------------------------------------------------------------


def test_dedupe_keeps_the_greatest_delta_column_value_not_the_last_row(lake):
    rows = bronze(
        [
            {"id": 1, "name": "new", "updated": 20},
            {"id": 1, "name": "old", "updated": 10},  # ingested later, but older data
            {"id": 2, "name": "first tie", "updated": 5},
            {"id": 2, "name": "second tie", "updated": 5},  # tie: the later ingested row wins
            {"id": 3, "name": "null delta", "updated": None},
            {"id": 3, "name": "dated", "updated": 1},  # a null delta is the oldest
        ]
    )
    result = build(lake, rows, config(deltaColumn="updated"), 1)

    assert by_id(stored(lake), "name") == {1: "new", 2: "second tie", 3: "dated"}
    assert result.rows_written == 3 and result.row_count == 3


def test_dedupe_without_delta_column_follows_ingestion_time_then_source_row(lake):
    later = bronze([{"id": 1, "name": "second load"}], at=T0 + timedelta(hours=1))
    earlier = bronze(
        [{"id": 1, "name": "first load, row 7"}, {"id": 1, "name": "first load, row 8"}],
        first_row=7,
    )
    # Reverse the rows of the first load too: input position alone would pick row 7.
    earlier = earlier.take([1, 0])
    rows = pa.concat_tables([later, earlier])  # input position disagrees with ingestion
    build(lake, rows, config(), 1)
    assert by_id(stored(lake), "name") == {1: "second load"}

    only_first_load = earlier
    build(lake, only_first_load, config(tableName="other"), 1)
    assert by_id(stored(lake, "other"), "name") == {1: "first load, row 8"}


def test_rows_with_a_null_key_are_rejected_and_counted(lake):
    rows = bronze([{"id": 1, "name": "a"}, {"id": None, "name": "b"}, {"id": None, "name": "c"}])
    result = build(lake, rows, config(), 1)
    assert result.rejected_rows == 2
    assert [row["name"] for row in stored(lake)] == ["a"]


def test_silver_keeps_ingested_at_and_source_and_drops_bronze_bookkeeping(lake):
    build(lake, bronze([{"id": 1, "name": "a"}]), config(), 1)
    columns = DeltaTable(f"{lake.root}/silver/customers").schema().to_arrow().names
    assert set(columns) == {"id", "name", "_ingested_at", "_source"}


# --- write strategies ---------------------------------------------------------------------------


def test_merge_updates_and_inserts_and_leaves_other_rows_untouched(lake):
    first = bronze([{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}, {"id": 3, "name": "Cy"}])
    build(lake, first, config(), 1)
    second_at = T0 + timedelta(days=1)
    second = bronze([{"id": 2, "name": "Bobby"}, {"id": 4, "name": "Dee"}], at=second_at)
    result = build(lake, second, config(), 2)

    rows = stored(lake)
    assert by_id(rows, "name") == {1: "Ann", 2: "Bobby", 3: "Cy", 4: "Dee"}
    assert by_id(rows, "_ingested_at") == {1: T0, 2: second_at, 3: T0, 4: second_at}
    assert result.rows_written == 2 and result.row_count == 4
    assert DeltaTable(f"{lake.root}/silver/customers").history(1)[0]["operation"] == "MERGE"


def test_merge_quotes_mixed_case_keys_and_adds_new_columns(lake):
    cfg = config(primaryKey=["CustomerID", "Region"])
    build(lake, bronze([{"CustomerID": 1, "Region": "EU", "name": "a"}]), cfg, 1)
    second = bronze(
        [
            {"CustomerID": 1, "Region": "EU", "name": "a2", "tier": "gold"},
            {"CustomerID": 1, "Region": "US", "name": "b", "tier": None},
        ]
    )
    build(lake, second, cfg, 2)
    rows = DeltaTable(f"{lake.root}/silver/customers").to_pyarrow_table().to_pylist()
    got = {(row["CustomerID"], row["Region"]): (row["name"], row["tier"]) for row in rows}
    assert got == {(1, "EU"): ("a2", "gold"), (1, "US"): ("b", None)}


def test_merge_quotes_a_key_holding_spaces_dots_and_quotes(lake):
    # The contract only allows plain identifiers as keys; the writer must not rely on it.
    key = 'order "no".x'
    cfg = SilverConfig.model_construct(
        table_name="orders",
        primary_key=key,
        surrogate_key=None,
        merge_strategy="merge",
        dedupe=True,
        delta_column=None,
    )
    build(lake, pa.table({key: [1, 2], "v": ["a", "b"]}), cfg, 1)
    build(lake, pa.table({key: [2, 3], "v": ["B", "c"]}), cfg, 2)
    rows = DeltaTable(f"{lake.root}/silver/orders").to_pyarrow_table().to_pylist()
    assert sorted((row[key], row["v"]) for row in rows) == [(1, "a"), (2, "B"), (3, "c")]


def test_an_empty_first_input_creates_an_empty_table_that_later_runs_merge_into(lake):
    cfg = config(surrogateKey="sk")
    empty = pa.table({"id": pa.array([], pa.int64()), "name": pa.array([], pa.string())})
    first = build(lake, empty, cfg, 1)
    second = build(lake, pa.table({"id": [4], "name": ["d"]}), cfg, 2)
    assert (first.version, first.row_count, second.row_count) == (
        1,
        0,
        1,
    )  # after the empty table, a commit of no rows
    assert by_id(stored(lake), "sk") == {4: 1}


def test_overwrite_replaces_all_rows_in_one_commit(lake):
    build(
        lake,
        bronze([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]),
        config(mergeStrategy="overwrite"),
        1,
    )
    result = build(lake, bronze([{"id": 3, "name": "c"}]), config(mergeStrategy="overwrite"), 2)
    assert by_id(stored(lake), "name") == {3: "c"}
    assert result.version == 2 and result.row_count == 1  # version 0: the empty table


def test_append_adds_rows_without_touching_existing_ones(lake):
    cfg = config(mergeStrategy="append", primaryKey=None, dedupe=False)
    build(lake, bronze([{"id": 1, "name": "a"}]), cfg, 1)
    build(lake, bronze([{"id": 1, "name": "a again"}]), cfg, 2)
    assert sorted(row["name"] for row in stored(lake)) == ["a", "a again"]


def test_merge_without_dedupe_refuses_repeated_keys_naming_one(lake):
    rows = bronze([{"id": 7, "name": "a"}, {"id": 7, "name": "b"}])
    with pytest.raises(TransformError, match=r"'id': 7.*dedupe is off"):
        build(lake, rows, config(dedupe=False), 1)


def test_a_missing_primary_key_column_is_named(lake):
    with pytest.raises(TransformError, match=r"primaryKey column\(s\) id not in the input"):
        build(lake, bronze([{"ident": 1}]), config(), 1)


def test_a_column_that_changes_type_is_refused_with_both_types(lake):
    build(lake, bronze([{"id": 1, "score": 10}]), config(), 1)
    with pytest.raises(TransformError, match=r"'score' is string in the input but int64"):
        build(lake, bronze([{"id": 2, "score": "ten"}]), config(), 2)


def test_a_narrower_type_is_widened_to_the_tables(lake):
    build(lake, bronze([{"id": 1, "score": 10}]), config(), 1)
    narrow = bronze([{"id": 2}]).append_column("score", pa.array([5], pa.int32()))
    build(lake, narrow, config(), 2)
    assert by_id(stored(lake), "score") == {1: 10, 2: 5}


# --- surrogate keys -----------------------------------------------------------------------------


def test_surrogate_keys_stay_put_over_three_runs_and_new_keys_count_on(lake):
    cfg = config(primaryKey="code", surrogateKey="customer_sk")
    build(lake, bronze([{"code": "b", "v": 1}, {"code": "a", "v": 1}]), cfg, 1)
    build(lake, bronze([{"code": "c", "v": 2}, {"code": "b", "v": 2}]), cfg, 2)
    build(
        lake, bronze([{"code": "a", "v": 3}, {"code": "e", "v": 3}, {"code": "d", "v": 3}]), cfg, 3
    )

    rows = DeltaTable(f"{lake.root}/silver/customers").to_pyarrow_table()
    got = {row["code"]: (row["customer_sk"], row["v"]) for row in rows.to_pylist()}
    # The keys new in a build are numbered in key order, not in the order the rows came:
    # a before b in run 1, d before e in run 3; a key given stays put.
    assert got == {"a": (1, 3), "b": (2, 2), "c": (3, 2), "d": (4, 3), "e": (5, 3)}
    assert rows.schema.field("customer_sk").type == pa.int64()
    assert rows.column_names[0] == "customer_sk"


def test_surrogate_keys_do_not_depend_on_which_source_was_loaded_first(tmp_path):
    core = [{"id": 3, "name": "c"}, {"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    crm = [{"id": 4, "tier": "gold"}, {"id": 2, "tier": "silver"}]
    cfg = config(surrogateKey="sk")
    got = []
    for core_at, crm_at in ((T0, T0 + timedelta(minutes=1)), (T0 + timedelta(minutes=1), T0)):
        lake = Lake(root=str(tmp_path / f"lake-{len(got)}"))
        rows = pa.concat_tables(
            [bronze(core, at=core_at), bronze(crm, at=crm_at)], promote_options="default"
        )
        build_silver(
            lake,
            rows,
            cfg,
            None,
            None,
            app_id="s",
            run_sequence=1,
            execution_id="e",
            combine_sources=True,
        )
        got.append(by_id(stored(lake), "sk"))
    assert got[0] == got[1] == {1: 1, 2: 2, 3: 3, 4: 4}


def test_surrogate_keys_survive_overwrite_and_numbers_are_never_reused(lake):
    cfg = config(primaryKey="code", surrogateKey="sk", mergeStrategy="overwrite")
    build(lake, bronze([{"code": "a"}, {"code": "b"}, {"code": "c"}]), cfg, 1)
    build(lake, bronze([{"code": "c"}, {"code": "a"}]), cfg, 2)  # b leaves, c holds the max
    build(lake, bronze([{"code": "a"}]), cfg, 3)  # c (3) leaves: the table max drops to 1
    build(lake, bronze([{"code": "a"}, {"code": "x"}]), cfg, 4)

    rows = DeltaTable(f"{lake.root}/silver/customers").to_pyarrow_table().to_pylist()
    assert {row["code"]: row["sk"] for row in rows} == {"a": 1, "x": 4}
    assert DeltaTable(f"{lake.root}/silver/customers").history(1)[0][HIGH_WATER_KEY] == "4"


def test_surrogate_key_without_dedupe_gives_repeated_keys_one_number(lake):
    cfg = config(primaryKey="code", surrogateKey="sk", mergeStrategy="append", dedupe=False)
    build(lake, bronze([{"code": "a"}, {"code": "b"}, {"code": "a"}]), cfg, 1)
    build(lake, bronze([{"code": "b"}, {"code": "c"}]), cfg, 2)
    rows = DeltaTable(f"{lake.root}/silver/customers").to_pyarrow_table().to_pylist()
    assert sorted((row["code"], row["sk"]) for row in rows) == [
        ("a", 1),
        ("a", 1),
        ("b", 2),
        ("b", 2),
        ("c", 3),
    ]


# --- retry safety and idempotency ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["merge", "overwrite", "append"])
def test_a_retry_of_the_same_run_writes_nothing(lake, strategy):
    cfg = config(mergeStrategy=strategy)
    build(lake, bronze([{"id": 1, "name": "a"}]), cfg, 5)
    before = DeltaTable(f"{lake.root}/silver/customers")

    retry = build(lake, bronze([{"id": 2, "name": "b"}]), cfg, 5)
    assert retry.skipped_as_already_committed
    # It reports the commit it found, and whose it is: the rows that commit wrote.
    applied = retry.already_applied
    assert (applied.execution_id, applied.run_sequence, applied.version) == ("exec-5", 5, 1)
    assert retry.rows_written == applied.rows == 1 and retry.version == before.version()

    # An older run arriving late is stale: it must fail, never pass for a success.
    with pytest.raises(StaleRunError, match=r"later run \(execution exec-5, run 5\)"):
        build(lake, bronze([{"id": 3, "name": "c"}]), cfg, 4)

    after = DeltaTable(f"{lake.root}/silver/customers")
    assert after.version() == before.version()
    assert by_id(stored(lake), "name") == {1: "a"}


def test_the_same_input_built_twice_leaves_the_same_rows(lake):
    cfg = config(surrogateKey="sk", deltaColumn="updated")
    rows = bronze([{"id": 1, "updated": 3}, {"id": 2, "updated": 1}, {"id": 1, "updated": 2}])
    build(lake, rows, cfg, 1)
    first = stored(lake)
    build(lake, rows, cfg, 2)
    assert stored(lake) == first
    assert len(first) == 2


class ConflictingLake(Lake):
    """Hands out a silver table, then commits another writer's merge behind its back once."""

    def load(self, layer, table, version=None):
        handle = super().load(layer, table, version)
        if layer == "silver" and handle is not None and not getattr(self, "_fired", False):
            object.__setattr__(self, "_fired", True)
            other = DeltaTable(self.uri(layer, table))
            (
                other.merge(
                    pa.table({"id": [9], "name": ["concurrent"]}),
                    predicate='target."id" = source."id"',
                    source_alias="source",
                    target_alias="target",
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        return handle


def test_a_concurrent_merge_is_detected_and_the_merge_redone(tmp_path):
    root = str(tmp_path / "lake")
    write_deltalake(f"{root}/silver/customers", pa.table({"id": [1], "name": ["a"]}))
    lake = ConflictingLake(root=root)

    result = build(lake, pa.table({"id": [1, 2], "name": ["a2", "b"]}), config(), 1)

    assert getattr(lake, "_fired", False)
    assert by_id(stored(lake), "name") == {1: "a2", 2: "b", 9: "concurrent"}
    # version 0: created, 1: the concurrent merge, 2: ours (a first attempt never landed)
    assert result.version == 2
    assert DeltaTable(f"{root}/silver/customers").transaction_version("job-silver") == 1


# --- derived columns and filters ----------------------------------------------------------------


def _stand_in_expressions() -> types.ModuleType:
    """Only for when the real sandbox is missing: knows the two expressions used below."""
    module = types.ModuleType("flowforge_transform.expressions")

    def add_derived_columns(table, derived):
        for name, expression in derived:
            assert expression == "amount * 2"
            table = table.append_column(name, pc.multiply(table.column("amount"), 2))
        return table

    def apply_filters(table, filters):
        assert list(filters) == ["doubled > 10"]
        return table.filter(pc.greater(table.column("doubled"), 10))

    module.add_derived_columns = add_derived_columns
    module.apply_filters = apply_filters
    return module


@pytest.fixture
def expressions(monkeypatch):
    try:
        from flowforge_transform.expressions import add_derived_columns, apply_filters  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "flowforge_transform.expressions", _stand_in_expressions())


def test_derived_columns_come_before_filters_which_may_use_them(lake, expressions):
    rows = bronze([{"id": 1, "amount": 3}, {"id": 2, "amount": 6}])
    build(
        lake,
        rows,
        config(),
        1,
        derived=[DerivedColumn(name="doubled", expression="amount * 2")],
        filters=["doubled > 10"],
    )
    assert by_id(stored(lake), "doubled") == {2: 12}


# --- reading input tables -----------------------------------------------------------------------


def test_union_by_name_fills_missing_columns_and_widens_types(lake):
    write_deltalake(
        lake.uri("bronze", "shop_a"),
        pa.table({"id": pa.array([1, 2], pa.int32()), "name": ["a", "b"]}),
    )
    write_deltalake(
        lake.uri("silver", "shop_b"),
        pa.table({"email": ["c@x"], "id": pa.array([3], pa.int64())}),
    )
    union = read_union(lake, ["shop_a", "shop_b"])
    assert union.column_names == ["id", "name", "email"]
    assert union.schema.field("id").type == pa.int64()
    assert union.to_pylist() == [
        {"id": 1, "name": "a", "email": None},
        {"id": 2, "name": "b", "email": None},
        {"id": 3, "name": None, "email": "c@x"},
    ]


def test_union_of_incompatible_types_names_the_column_and_both_tables(lake):
    write_deltalake(lake.uri("bronze", "shop_a"), pa.table({"id": [1]}))
    write_deltalake(lake.uri("gold", "shop_b"), pa.table({"id": ["x"]}))
    with pytest.raises(
        TransformError, match=r"'id' is int64 in table 'shop_a' but string in table 'shop_b'"
    ):
        read_union(lake, ["shop_a", "shop_b"])


def test_a_missing_input_table_is_named(lake):
    write_deltalake(lake.uri("bronze", "shop_a"), pa.table({"id": [1]}))
    with pytest.raises(TransformError, match=r"'shop_z' does not exist"):
        read_union(lake, ["shop_a", "shop_z"])


def test_transform_error_survives_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(TransformError("column 'x' is missing")))
    assert isinstance(error, TransformError) and str(error) == "column 'x' is missing"


def test_multi_source_rows_combine_per_key_latest_non_null_wins(tmp_path):
    from datetime import UTC, datetime

    from flowforge_shared.contracts.jobs import DerivedColumn as Derived
    from flowforge_transform.inputs import union_by_name

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    core = pa.table(
        {
            "customer_id": [1, 2],
            "first_name": [" Ana ", "Bo"],
            "email": ["ANA@X.COM", None],
            "_ingested_at": [t0, t0],
            "_source_row": [1, 2],
        }
    )
    crm = pa.table(
        {
            "customer_id": [1, 3],
            "loyalty_tier": ["Gold", "Silver"],
            "email": [None, "c@x.com"],
            "_ingested_at": [datetime(2024, 1, 2, tzinfo=UTC)] * 2,
            "_source_row": [1, 2],
        }
    )
    lake = Lake(str(tmp_path))
    result = build_silver(
        lake,
        union_by_name([("core", core), ("crm", crm)]),
        SilverConfig(table_name="master", primary_key="customer_id"),
        [
            Derived(name="first_name", expression="TRIM(first_name)"),
            Derived(name="email", expression="LOWER(email)"),
        ],
        ["first_name IS NOT NULL"],
        app_id="a",
        run_sequence=1,
        execution_id="e",
        combine_sources=True,
    )
    assert result.row_count == 2  # customer 3 exists only in the CRM: filtered out
    rows = {
        r["customer_id"]: r
        for r in DeltaTable(lake.uri("silver", "master")).to_pyarrow_table().to_pylist()
    }
    assert rows[1]["first_name"] == "Ana" and rows[1]["loyalty_tier"] == "Gold"
    assert rows[1]["email"] == "ana@x.com"  # the CRM's null did not erase it
    assert rows[2]["loyalty_tier"] is None


# --- columns a load did not carry ---------------------------------------------------------------


def _load(rows: list[dict], execution: str, *, at: datetime) -> pa.Table:
    table = bronze(rows, at=at)
    return table.set_column(
        table.column_names.index("_execution_id"),
        "_execution_id",
        pa.array([execution] * table.num_rows),
    )


def test_a_column_the_load_did_not_carry_keeps_the_stored_value_on_merge(lake):
    first = _load([{"id": 1, "name": "Ann", "city": "Oslo"}], "e1", at=T0)
    build(lake, first, config(), 1)
    # Only the second load is the input (as after a bronze overwrite): the stored row counts.
    second = _load(
        [{"id": 1, "name": None, "city": "Rome"}, {"id": 2, "name": None, "city": "Lima"}],
        "e2",
        at=T0 + timedelta(days=1),
    )
    result = build_silver(
        lake,
        second,
        config(),
        None,
        None,
        app_id="job-silver",
        run_sequence=2,
        execution_id="exec-2",
        absent={("e2", "job-bronze"): ["name"]},
    )
    rows = stored(lake)
    assert [(r["id"], r["name"], r["city"]) for r in rows] == [
        (1, "Ann", "Rome"),
        (2, None, "Lima"),
    ]
    assert result.notes == (
        "column 'name' was not in the latest load of 2 row(s): 1 kept the value they had, "
        "1 (new) have it null",
    )


def test_without_the_record_a_null_is_data_and_overwrites(lake):
    build(lake, _load([{"id": 1, "name": "Ann"}], "e1", at=T0), config(), 1)
    build(lake, _load([{"id": 1, "name": None}], "e2", at=T0 + timedelta(days=1)), config(), 2)
    assert by_id(stored(lake), "name") == {1: None}


def test_dedupe_takes_a_value_the_latest_load_lacks_from_the_keys_earlier_row(lake):
    rows = pa.concat_tables(
        [
            _load([{"id": 1, "name": "Ann", "v": 1}, {"id": 2, "name": "Bo", "v": 1}], "e1", at=T0),
            _load(
                [{"id": 1, "name": None, "v": 2}, {"id": 2, "name": None, "v": 0}],
                "e2",
                at=T0 + timedelta(days=1),
            ),
        ],
        promote_options="permissive",
    )
    build_silver(
        lake,
        rows,
        config(deltaColumn="v"),
        None,
        None,
        app_id="job-silver",
        run_sequence=1,
        execution_id="exec-1",
        absent={("e2", "job-bronze"): ["name"]},
    )
    got = {r["id"]: (r["name"], r["v"]) for r in stored(lake)}
    # id 1: the second load wins (v 2) and takes the name from the first; id 2: the first wins.
    assert got == {1: ("Ann", 2), 2: ("Bo", 1)}


# --- safe type changes ----------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["merge", "append", "overwrite"])
def test_a_wider_decimal_widens_the_silver_table_keeping_every_value(lake, strategy):
    from decimal import Decimal

    cfg = config(
        mergeStrategy=strategy,
        **({"primaryKey": None, "dedupe": False} if strategy == "append" else {}),
    )
    narrow = bronze([{"id": 1}]).append_column(
        "amount", pa.array([Decimal("8996.40")], pa.decimal128(6, 2))
    )
    build(lake, narrow, cfg, 1)
    wide = bronze([{"id": 2}], at=T0 + timedelta(days=1)).append_column(
        "amount", pa.array([Decimal("12345.67")], pa.decimal128(7, 2))
    )
    result = build(lake, wide, cfg, 2)
    table = DeltaTable(f"{lake.root}/silver/customers")
    assert pa.schema(table.schema().to_arrow()).field("amount").type == pa.decimal128(7, 2)
    expected = {2: Decimal("12345.67")}
    if strategy != "overwrite":
        expected[1] = Decimal("8996.40")
    assert by_id(stored(lake), "amount") == expected
    assert result.notes == (
        "silver table 'customers' widened (amount: decimal(6,2) -> decimal(7,2)): every "
        "stored value kept, in one commit",
    )


def test_an_int32_table_column_widens_to_int64(lake):
    build(lake, bronze([{"id": 1}]).append_column("n", pa.array([5], pa.int32())), config(), 1)
    build(lake, bronze([{"id": 2}]).append_column("n", pa.array([2**40], pa.int64())), config(), 2)
    assert by_id(stored(lake), "n") == {1: 5, 2: 2**40}


def test_a_decimal_column_becomes_text_when_the_input_brings_exact_number_text(lake):
    from decimal import Decimal

    old = bronze([{"id": 1}]).append_column("n", pa.array([Decimal("1.5")], pa.decimal128(38, 10)))
    build(lake, old, config(), 1)
    text = pa.field("n", pa.string(), metadata={"flowforge.source_type": "numeric"})
    new = bronze([{"id": 2}], at=T0 + timedelta(days=1)).append_column(
        text, pa.array(["1" + "0" * 40])
    )
    result = build(lake, new, config(), 2)
    assert by_id(stored(lake), "n") == {1: "1.5000000000", 2: "1" + "0" * 40}
    assert "n: decimal(38,10) -> string" in result.notes[0]
    # text that is not a number is not a widening
    plain = bronze([{"id": 3}]).append_column("m", pa.array([Decimal("1")], pa.decimal128(5, 0)))
    build(lake, plain, config(), 3)
    with pytest.raises(TransformError, match="'m' is string in the input"):
        build(lake, bronze([{"id": 4, "m": "x"}]), config(), 4)


def test_rows_already_in_ingestion_order_stay_and_any_pair_out_of_order_is_sorted():
    from flowforge_transform.silver import in_ingestion_order

    def order(times: list, source_rows: list) -> list[int]:
        table = pa.table(
            {
                "_ingested_at": pa.array(times, pa.timestamp("us", tz="UTC")),
                "_source_row": pa.array(source_rows, pa.int64()),
                "mark": pa.array(range(len(times)), pa.int64()),
            }
        )
        return in_ingestion_order(table).column("mark").to_pylist()

    t1 = T0 + timedelta(hours=1)
    assert order([T0, T0, t1, t1], [1, 2, 3, 3]) == [0, 1, 2, 3]  # ties keep input order
    assert order([T0, T0, t1, t1], [1, 2, 4, 3]) == [0, 1, 3, 2]  # a tie, then rows reversed
    assert order([T0, t1, T0], [1, 1, 2]) == [0, 2, 1]
    assert order([T0, None, t1], [1, 2, 3]) == [1, 0, 2]  # a missing time sorts first


@pytest.mark.parametrize(
    "ids",
    [[1, 2, 3, 3], [3, 1, 2, 3], [1, 3, 2, 2]],
    ids=["repeat-at-end-of-ascending-run", "unordered", "descending-pair-then-repeat"],
)
def test_dedupe_finds_a_repeated_key_whatever_the_input_order(lake, ids):
    rows = bronze([{"id": key, "name": f"row {n}"} for n, key in enumerate(ids)])
    result = build(lake, rows, config(), 1)
    last = {key: f"row {n}" for n, key in enumerate(ids)}  # the later row wins
    assert by_id(stored(lake), "name") == last
    assert result.row_count == len(last)

"""Gold builds: joins, aggregations (exact decimal sums), one-commit rebuilds, retry safety.
Tables are read back with deltalake directly, not through the code under test."""

from __future__ import annotations

import sys
import types
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from flowforge_shared.contracts.jobs import GoldConfig, TransformationConfig
from flowforge_shared.lake import Lake, StaleRunError
from flowforge_transform.gold import build_gold
from flowforge_transform.inputs import TransformError

CENTS = pa.decimal128(10, 2)


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(root=str(tmp_path / "lake"))


def steps(**fields) -> TransformationConfig:
    return TransformationConfig.model_validate(fields)


def build(lake: Lake, rows: pa.Table, transformation: TransformationConfig | None, run: int = 1):
    return build_gold(
        lake,
        rows,
        transformation,
        GoldConfig(table_name="sales_summary"),
        app_id="job-gold",
        run_sequence=run,
        execution_id=f"exec-{run}",
    )


def gold(lake: Lake) -> pa.Table:
    return DeltaTable(f"{lake.root}/gold/sales_summary").to_pyarrow_table()


def orders() -> pa.Table:
    return pa.table(
        {
            "region": ["EU", "US", "EU", "EU", "US"],
            "customer": ["ann", "bob", "ann", None, "cy"],
            "amount": pa.array(
                [Decimal("10.10"), Decimal("0.20"), Decimal("5.05"), Decimal("1.00"), None],
                CENTS,
            ),
            "qty": [1, 2, 3, 4, 5],
        }
    )


# --- aggregations -------------------------------------------------------------------------------


def test_group_by_with_every_aggregation_function(lake):
    aggregations = [
        {"column": "amount", "function": "SUM", "alias": "total"},
        {"column": "qty", "function": "SUM", "alias": "units"},
        {"column": "*", "function": "COUNT", "alias": "orders"},
        {"column": "customer", "function": "COUNT", "alias": "named_orders"},
        {"column": "customer", "function": "COUNT_DISTINCT", "alias": "customers"},
        {"column": "qty", "function": "AVG", "alias": "avg_qty"},
        {"column": "amount", "function": "MIN", "alias": "smallest"},
        {"column": "amount", "function": "MAX", "alias": "largest"},
    ]
    result = build(lake, orders(), steps(groupBy=["region"], aggregations=aggregations))

    table = gold(lake)
    assert table.to_pylist() == [
        {
            "region": "EU",
            "total": Decimal("16.15"),
            "units": 8,
            "orders": 3,
            "named_orders": 2,
            "customers": 1,
            "avg_qty": pytest.approx(8 / 3),
            "smallest": Decimal("1.00"),
            "largest": Decimal("10.10"),
        },
        {
            "region": "US",
            "total": Decimal("0.20"),
            "units": 7,
            "orders": 2,
            "named_orders": 2,
            "customers": 2,
            "avg_qty": 3.5,
            "smallest": Decimal("0.20"),
            "largest": Decimal("0.20"),
        },
    ]
    assert pa.types.is_decimal(table.schema.field("total").type)
    assert table.schema.field("total").type.scale == 2
    assert table.schema.field("units").type == pa.int64()
    assert table.schema.field("orders").type == pa.int64()
    # Version 0 is the empty table created before the first build's commit.
    assert result.rows_written == 2 and result.row_count == 2 and result.version == 1


def test_a_decimal_sum_is_exact_to_the_cent(lake):
    # 0.10 and 0.01 have no exact binary form: a float sum of these drifts off the cent.
    values = [Decimal("0.10"), Decimal("0.01"), Decimal("1234567.89")] * 3000
    rows = pa.table({"amount": pa.array(values, CENTS)})
    float_total = 0.0
    for value in values:
        float_total += float(value)
    assert float_total != 3703704000.0  # the trap is real: floats miss the cent

    build(lake, rows, steps(aggregations=[{"column": "amount", "function": "SUM", "alias": "t"}]))

    table = gold(lake)
    assert table.schema.field("t").type == pa.decimal128(38, 2)
    [[total]] = [list(row.values()) for row in table.to_pylist()]
    assert isinstance(total, Decimal) and total == Decimal("3703704000.00")


def test_aggregations_without_group_by_give_one_row(lake):
    aggregations = [{"column": "*", "function": "COUNT", "alias": "n"}]
    build(lake, orders(), steps(aggregations=aggregations))
    assert gold(lake).to_pylist() == [{"n": 5}]


def test_sum_of_a_text_column_is_refused_naming_it(lake):
    aggregations = [{"column": "customer", "function": "SUM", "alias": "x"}]
    with pytest.raises(TransformError, match=r"SUM needs a numeric column, but 'customer'"):
        build(lake, orders(), steps(aggregations=aggregations))


def test_an_aggregation_of_a_missing_column_is_named(lake):
    aggregations = [{"column": "price", "function": "MAX", "alias": "x"}]
    with pytest.raises(TransformError, match=r"column 'price' not in the rows"):
        build(lake, orders(), steps(aggregations=aggregations))


# --- joins --------------------------------------------------------------------------------------


def customers_in_silver(lake: Lake) -> None:
    write_deltalake(
        lake.uri("silver", "customers"),
        pa.table(
            {
                "customer": ["cy", "ann", "dee"],
                "name": ["Cy Young", "Ann Lee", "Dee Dee"],
                "country": ["US", "FR", "DE"],
                "_ingested_at": pa.array([0, 0, 0], pa.timestamp("us", tz="UTC")),
                "_source": ["crm", "crm", "crm"],
            }
        ),
    )


def test_a_left_join_keeps_every_input_row_and_suffixes_clashing_names(lake):
    customers_in_silver(lake)
    rows = pa.table(
        {
            "order_id": [1, 2, 3],
            "customer": ["ann", "bob", "cy"],
            "name": ["first order", "second", "third"],
        }
    )
    joins = [{"table": "customers", "on": "customer", "type": "left"}]
    build(lake, rows, steps(joins=joins))

    table = gold(lake)
    assert table.column_names == ["order_id", "customer", "name", "name_customers", "country"]
    assert table.to_pylist() == [
        {
            "order_id": 1,
            "customer": "ann",
            "name": "first order",
            "name_customers": "Ann Lee",
            "country": "FR",
        },
        {
            "order_id": 2,
            "customer": "bob",
            "name": "second",
            "name_customers": None,
            "country": None,
        },
        {
            "order_id": 3,
            "customer": "cy",
            "name": "third",
            "name_customers": "Cy Young",
            "country": "US",
        },
    ]


def test_name_clashes_are_found_whatever_the_case(lake):
    customers_in_silver(lake)
    rows = pa.table({"customer": ["ann"], "COUNTRY": ["Ireland"]})
    build(lake, rows, steps(joins=[{"table": "customers", "on": "customer", "type": "inner"}]))
    assert gold(lake).to_pylist() == [
        {"customer": "ann", "COUNTRY": "Ireland", "name": "Ann Lee", "country_customers": "FR"}
    ]


def test_a_full_join_takes_the_key_from_whichever_side_has_it(lake):
    customers_in_silver(lake)
    rows = pa.table({"customer": ["ann", "bob"], "qty": [1, 2]})
    build(lake, rows, steps(joins=[{"table": "customers", "on": ["customer"], "type": "full"}]))
    got = {row["customer"]: (row["qty"], row["country"]) for row in gold(lake).to_pylist()}
    assert got == {"ann": (1, "FR"), "bob": (2, None), "cy": (None, "US"), "dee": (None, "DE")}


def test_a_join_key_missing_from_the_joined_table_is_named(lake):
    customers_in_silver(lake)
    rows = pa.table({"client": ["ann"]})
    with pytest.raises(TransformError, match=r"key column\(s\) client not in table 'customers'"):
        build(lake, rows, steps(joins=[{"table": "customers", "on": "client"}]))


def test_a_join_with_a_missing_table_names_it(lake):
    with pytest.raises(TransformError, match=r"'nowhere' does not exist"):
        build(lake, orders(), steps(joins=[{"table": "nowhere", "on": "customer"}]))


# --- the whole pipeline, rebuilds and retries ---------------------------------------------------


def _stand_in_expressions() -> types.ModuleType:
    """Only for when the real sandbox is missing: knows the expressions used below."""
    module = types.ModuleType("flowforge_transform.expressions")

    def add_derived_columns(table, derived):
        for name, expression in derived:
            assert expression == "qty * 10"
            table = table.append_column(name, pc.multiply(table.column("qty"), 10))
        return table

    def apply_filters(table, filters):
        assert list(filters) == ["country = 'FR'"]
        return table.filter(pc.equal(table.column("country"), "FR"))

    module.add_derived_columns = add_derived_columns
    module.apply_filters = apply_filters
    return module


@pytest.fixture
def expressions(monkeypatch):
    try:
        from flowforge_transform.expressions import add_derived_columns, apply_filters  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "flowforge_transform.expressions", _stand_in_expressions())


def test_join_then_derived_columns_then_filters_then_aggregation(lake, expressions):
    customers_in_silver(lake)
    transformation = steps(
        joins=[{"table": "customers", "on": "customer"}],
        derivedColumns=[{"name": "points", "expression": "qty * 10"}],
        filters=["country = 'FR'"],  # a column only the join brings
        groupBy=["customer"],
        aggregations=[{"column": "points", "function": "SUM", "alias": "points"}],
    )
    build(lake, orders(), transformation)
    assert gold(lake).to_pylist() == [{"customer": "ann", "points": 40}]


def test_a_rebuild_leaves_the_same_rows_and_a_retry_writes_nothing(lake):
    transformation = steps(
        groupBy=["region"], aggregations=[{"column": "amount", "function": "SUM", "alias": "t"}]
    )
    build(lake, orders(), transformation, run=1)
    first = gold(lake).to_pylist()
    second = build(lake, orders(), transformation, run=2)
    assert gold(lake).to_pylist() == first
    assert second.version == 2 and not second.skipped_as_already_committed

    retry = build(lake, orders().slice(0, 1), transformation, run=2)
    assert retry.skipped_as_already_committed
    assert retry.already_applied.execution_id == "exec-2"
    assert retry.rows_written == len(first)  # the rows of the commit it found
    assert DeltaTable(f"{lake.root}/gold/sales_summary").version() == 2
    assert gold(lake).to_pylist() == first
    with pytest.raises(StaleRunError):
        build(lake, orders(), transformation, run=1)
    assert DeltaTable(f"{lake.root}/gold/sales_summary").version() == 2


def test_a_rebuild_replaces_the_schema_in_one_commit(lake):
    by_region = steps(
        groupBy=["region"], aggregations=[{"column": "*", "function": "COUNT", "alias": "n"}]
    )
    build(lake, orders(), by_region, run=1)
    build(lake, orders(), None, run=2)  # no transformation: the rows as they come

    table = DeltaTable(f"{lake.root}/gold/sales_summary")
    assert table.version() == 2  # the empty table, then one commit per build
    assert table.to_pyarrow_table().column_names == ["region", "customer", "amount", "qty"]
    assert table.to_pyarrow_table().num_rows == 5
    assert table.history(1)[0]["flowforge.execution_id"] == "exec-2"

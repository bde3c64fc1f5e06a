"""What an incremental run drops as already loaded: the (key, delta) of the bronze rows at or
past the read's lower bound, found by a filtered scan (never the whole table), compared
exactly (100 ns timestamps by their exact text, not bronze's microseconds)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from flowforge_ingest.bronze import write_bronze
from flowforge_ingest.connectors.watermark import Watermark
from flowforge_ingest.lookback import WithoutKnownRows, known_rows


class Batches:
    def __init__(self, table: pa.Table, size: int = 100) -> None:
        self.schema = table.schema
        self.batches = table.to_batches(max_chunksize=size)

    def __iter__(self):
        return iter(self.batches)

    def close(self) -> None:
        pass


def load(lake, table: pa.Table, run: int, name: str = "bronze_t") -> None:
    write_bronze(lake, name, Batches(table), audit=None, app_id="job", run_sequence=run)


def kept(stream) -> list[dict]:
    return pa.Table.from_batches(list(stream), schema=stream.schema).to_pylist()


def test_only_the_rows_at_or_past_the_watermark_are_read_from_bronze(lake):
    load(lake, pa.table({"id": range(1000), "d": range(1000), "v": ["x"] * 1000}), 1)
    known = known_rows(lake, "bronze_t", ["id"], "d", since=Watermark("d", "integer", "990"))
    assert known.rows == {(i, i) for i in range(990, 1000)}


@pytest.mark.parametrize(
    ("kind", "column", "bound"),
    [
        (
            "timestamp",
            pa.array([datetime(2024, 1, 1, 0, 0, s) for s in range(10)], pa.timestamp("us")),
            "2024-01-01T00:00:07.0000009",  # cut down to bronze's microseconds: 07 is in
        ),
        (
            "timestamptz",
            pa.array(
                [datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(10)],
                pa.timestamp("us", "UTC"),
            ),
            "2024-01-01T00:00:07Z",
        ),
        ("decimal", pa.array([f"{s}.5" for s in range(10)]).cast(pa.decimal128(6, 1)), "7.5"),
        ("string", pa.array([f"2024-01-0{s}" for s in range(10)]), "2024-01-07"),
    ],
)
def test_the_bound_meets_bronzes_type(lake, kind, column, bound):
    load(lake, pa.table({"id": range(10), "d": column}), 1)
    known = known_rows(lake, "bronze_t", ["id"], "d", since=Watermark("d", kind, bound))
    assert sorted(key for key, _ in known.rows) == [7, 8, 9]


def test_rows_bronze_holds_are_dropped_exactly_and_new_versions_kept(lake):
    ns = pa.timestamp("ns")
    base = 1_717_000_000_000_000_000
    first = pa.table(
        {"id": [1, 2, 3], "d": pa.array([base, base + 100, base + 100], ns), "v": ["a", "b", "c"]}
    )
    load(lake, first, 1)
    since = Watermark("d", "timestamp", "2024-05-29T16:26:40.0000001")
    known = known_rows(lake, "bronze_t", ["id"], "d", since=since)
    # bronze's microseconds are compared with the bound cut down to microseconds: row 1
    # (100 ns before the bound) is read too, harmlessly; exact values are what is compared
    assert known.exact == "d__ns" and len(known) == 3

    read = pa.table(
        {
            "id": [2, 3, 3, 4],
            # 3 again; 3 updated 100 ns later (same microsecond in bronze); 4 new
            "d": pa.array([base + 100, base + 100, base + 200, base + 100], ns),
            "v": ["b", "c", "c2", "tie"],
        }
    )
    stream = WithoutKnownRows(Batches(read, size=2), known)
    assert [(r["id"], r["v"]) for r in kept(stream)] == [(3, "c2"), (4, "tie")]
    assert stream.dropped == 2


def test_composite_keys_and_an_empty_bronze(lake):
    assert len(known_rows(lake, "missing", ["a", "b"], "d")) == 0
    load(lake, pa.table({"a": [1, 1], "b": ["x", "y"], "d": [5, 5]}), 1)
    known = known_rows(lake, "bronze_t", ["a", "b"], "d", since=Watermark("d", "integer", "5"))
    read = pa.table({"a": [1, 1, 2], "b": ["x", "z", "x"], "d": [5, 5, 5]})
    assert kept(WithoutKnownRows(Batches(read), known)) == [
        {"a": 1, "b": "z", "d": 5},
        {"a": 2, "b": "x", "d": 5},
    ]

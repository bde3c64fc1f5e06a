"""The SQLite connector (files opened read-only, ATTACH refused, declared and inferred types,
batches, timeouts) and, since SQLite runs in-process, the pieces every connector shares:
the registry, the failure vocabulary and the Arrow conversions."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from flowforge_ingest.connectors.arrowing import (
    SourceDataError,
    SourceQueryError,
    parse_iso_interval,
    rebatch,
    to_arrow,
)
from flowforge_ingest.connectors.base import (
    ConnectError,
    ConnectFailure,
    ConnectionParams,
    SourceReadError,
)
from flowforge_ingest.connectors.registry import connect_failure, connector_for, scrub
from flowforge_ingest.connectors.sqlite import database_uri
from tests.ingest.connector_fixtures import AWKWARD_PASSWORD, assert_hides


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "shop?v=1#main.db"  # characters a URI would misread
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY,
                customer VARCHAR(40) NOT NULL,
                amount DECIMAL(10,2),
                paid BOOLEAN,
                placed DATE,
                updated DATETIME,
                note,
                photo BLOB
            );
            INSERT INTO orders VALUES
              (1, 'Ann', 12.5, 1, '2024-02-29', '2024-03-10 12:34:56.123456', 'x', x'00ff'),
              (2, 'O''Brien', NULL, 0, NULL, NULL, 7, NULL),
              (3, 'ä€', '0.10', NULL, '1970-01-01', '1970-01-01 00:00:00', NULL, x'');
            CREATE VIEW paid_orders AS SELECT id, customer FROM orders WHERE paid = 1;
            CREATE TABLE numbers (n INTEGER, label TEXT);
            """
        )
        conn.executemany(
            "INSERT INTO numbers VALUES (?, ?)", [(n, f"n{n}") for n in range(1, 1001)]
        )
        conn.execute("ANALYZE")
    return path


def sqlite_params(path: Path | str, **options) -> ConnectionParams:
    return ConnectionParams(db_type="sqlite", database=str(path), options=options)


@pytest.fixture
def sqlite(database):
    connector = connector_for("sqlite")
    conn = connector.connect(sqlite_params(database))
    yield connector, conn
    conn.close()


def test_the_file_is_opened_read_only_and_cannot_attach_others(sqlite, tmp_path):
    connector, conn = sqlite
    assert connector.server_version(conn).startswith("SQLite 3.")
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        conn.execute("INSERT INTO numbers VALUES (0, 'zero')")
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(sqlite3.OperationalError, match="too many attached"):
        conn.execute("ATTACH DATABASE ? AS other", (str(other),))


def test_a_with_block_closes_the_connection(database):
    with connector_for("sqlite").connect(sqlite_params(database)) as conn:
        assert conn.execute("SELECT count(*) FROM numbers").fetchone() == (1000,)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_missing_file_and_not_a_database_are_told_apart(tmp_path):
    connector = connector_for("sqlite")
    with pytest.raises(ConnectError) as missing:
        connector.connect(sqlite_params(tmp_path / "missing.db"))
    assert missing.value.kind is ConnectFailure.DATABASE
    assert not (tmp_path / "missing.db").exists()  # read-only: nothing was created
    text_file = tmp_path / "notes.db"
    text_file.write_text("hello, not a database\n" * 100)
    with pytest.raises(ConnectError) as wrong:
        connector.connect(sqlite_params(text_file))
    assert wrong.value.kind is ConnectFailure.PROTOCOL
    assert "notes.db" in wrong.value.message


def test_lists_tables_and_views_with_analyze_estimates(sqlite):
    connector, conn = sqlite
    tables = {table.name: table for table in connector.list_tables(conn, None)}
    assert set(tables) == {"orders", "paid_orders", "numbers"}
    assert (tables["numbers"].kind, tables["numbers"].estimated_rows) == ("table", 1000)
    assert (tables["paid_orders"].kind, tables["paid_orders"].estimated_rows) == ("view", None)


def test_describes_declared_types(sqlite):
    connector, conn = sqlite
    columns = {column.name: column for column in connector.describe(conn, None, "orders")}
    assert columns["id"].primary_key and not columns["id"].nullable
    assert not columns["customer"].nullable and columns["customer"].max_length == 40
    assert (columns["amount"].source_type, columns["amount"].arrow_type) == (
        "DECIMAL(10,2)",
        "decimal128(10, 2)",
    )
    assert columns["updated"].arrow_type == "timestamp[us]"
    assert columns["note"].source_type == "" and columns["note"].arrow_type == "string"
    with pytest.raises(SourceQueryError, match="no table or view"):
        connector.describe(conn, None, "nope")


def test_round_trip_with_declared_types(sqlite):
    connector, conn = sqlite
    columns = connector.describe(conn, None, "orders")
    stream = connector.execute_batches(conn, "SELECT * FROM orders ORDER BY id", None, 2, columns)
    assert stream.schema.field("amount").type == pa.decimal128(10, 2)
    batches = list(stream)
    assert [batch.num_rows for batch in batches] == [2, 1]
    rows = pa.Table.from_batches(batches).to_pylist()
    assert rows[0] == {
        "id": 1,
        "customer": "Ann",
        "amount": Decimal("12.50"),
        "paid": True,
        "placed": dt.date(2024, 2, 29),
        "updated": dt.datetime(2024, 3, 10, 12, 34, 56, 123456),
        "note": "x",
        "photo": b"\x00\xff",
    }
    assert rows[1]["customer"] == "O'Brien" and rows[1]["note"] == "7" and rows[1]["paid"] is False
    assert rows[2]["amount"] == Decimal("0.10") and rows[2]["photo"] == b""


def test_types_are_inferred_from_the_first_batch_without_a_description(sqlite):
    connector, conn = sqlite
    stream = connector.execute_batches(
        conn, "SELECT n, n * 0.5 AS half, label, NULL AS empty FROM numbers ORDER BY n", None, 400
    )
    assert [str(field.type) for field in stream.schema] == ["int64", "double", "string", "string"]
    batches = list(stream)
    assert [batch.num_rows for batch in batches] == [400, 400, 200]
    assert pa.Table.from_batches(batches).column("half").to_pylist()[:2] == [0.5, 1.0]


def test_named_parameters_are_bound(sqlite):
    connector, conn = sqlite
    stream = connector.execute_batches(
        conn, "SELECT id FROM orders WHERE customer = :name", {"name": "O'Brien"}, 10
    )
    assert [row["id"] for row in pa.Table.from_batches(list(stream)).to_pylist()] == [2]


def test_query_errors_and_timeouts_are_permanent(database):
    connector = connector_for("sqlite")
    conn = connector.connect(sqlite_params(database, queryTimeout="1"))
    with pytest.raises(SourceQueryError, match="no such table"):
        connector.execute_batches(conn, "SELECT * FROM nope", None, 10)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
    with pytest.raises(SourceQueryError, match="queryTimeout"):
        list(connector.execute_batches(conn, endless, None, 10))
    conn.close()


def test_database_uri_escapes_what_uris_would_read(tmp_path):
    uri = database_uri(str(tmp_path / "a?b#c%d.db"))
    assert uri.endswith("/a%3Fb%23c%25d.db?mode=ro")


# --- shared: registry, failures, Arrow conversions -------------------------------------------


@pytest.mark.parametrize(
    "db_type", ["postgresql", "mysql", "sqlite", "sql-server", "oracle", "snowflake"]
)
def test_every_database_type_has_a_connector(db_type):
    assert connector_for(db_type).db_type == db_type


def test_unknown_database_type_names_the_known_ones():
    with pytest.raises(ValueError, match="postgresql"):
        connector_for("db2")


def test_failure_messages_and_details_never_hold_the_password():
    params = ConnectionParams(
        db_type="postgresql", host="db", port=5432, username="u", password=AWKWARD_PASSWORD
    )
    leaky = RuntimeError(f"bad login for password={AWKWARD_PASSWORD} at db")
    for kind in ConnectFailure:
        failure = connect_failure(kind, leaky, "postgresql", params)
        assert failure.kind is kind
        assert_hides(failure, AWKWARD_PASSWORD)
    assert scrub("pw=a%20b%20c%20d%20e", ["a b c d e"]) is None  # the encoded form too


def test_to_arrow_keeps_values_exact_or_names_the_column():
    assert to_arrow([Decimal("1.25"), None], pa.decimal128(5, 2), "price").to_pylist() == [
        Decimal("1.25"),
        None,
    ]
    with pytest.raises(SourceDataError, match="'price'"):
        to_arrow([Decimal("1.255")], pa.decimal128(5, 2), "price")
    with pytest.raises(SourceDataError, match="'small'"):
        to_arrow([70000], pa.int16(), "small")
    aware = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert to_arrow([aware], pa.timestamp("us", tz="UTC"), "at").to_pylist() == [
        dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    ]
    assert to_arrow([dt.timedelta(hours=5)], pa.time64("us"), "t").to_pylist() == [dt.time(5)]
    with pytest.raises(SourceDataError, match="'t'"):
        to_arrow([dt.timedelta(hours=25)], pa.time64("us"), "t")


def test_iso_intervals_keep_months_days_and_nanoseconds_apart():
    assert parse_iso_interval("P1Y2M3DT4H5M6.5S") == pa.MonthDayNano(
        [14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9 + 500_000_000]
    )
    assert parse_iso_interval("P-1M-2DT-0.000001S") == pa.MonthDayNano([-1, -2, -1000])
    with pytest.raises(ValueError):
        parse_iso_interval("1 day")


def test_rebatch_slices_to_at_most_batch_size():
    batch = pa.record_batch({"n": list(range(10))})
    assert [piece.num_rows for piece in rebatch([batch], 4)] == [4, 4, 2]


def test_read_errors_are_transient_only_when_the_source_is_busy():
    from flowforge_ingest.connectors.sqlite import read_error

    assert isinstance(read_error(sqlite3.OperationalError("database is locked")), SourceReadError)
    assert isinstance(read_error(sqlite3.OperationalError("no such column: x")), SourceQueryError)

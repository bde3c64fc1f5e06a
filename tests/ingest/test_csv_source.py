"""The CSV reader: landing paths, dialects, encodings, types, source rows, malformed rows."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import threading
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from flowforge_ingest.csv_source import read_csv_batches, resolve_landing_path
from flowforge_ingest.errors import CsvFormatError, LandingPathError, MalformedRowError
from flowforge_shared.errors import PermanentError
from tests.ingest.conftest import file_config


def read_all(path: Path, **config) -> tuple[pa.Table, object]:
    batches = read_csv_batches(path, file_config(**config), source_name="data.csv")
    table = pa.Table.from_batches(list(batches), schema=batches.schema)
    return table, batches


# --------------------------------------------------------------------------- landing paths


def test_landing_path_resolves_a_file_inside_the_landing_area(landing, write_csv):
    path = write_csv("sales/2024/jan.csv", "a\n1\n")
    assert resolve_landing_path(landing, "sales/2024/jan.csv") == path.resolve()


@pytest.mark.parametrize(
    "file_path",
    [
        "/etc/passwd",
        "../outside.csv",
        "sales/../../outside.csv",
        "C:/data/file.csv",
        "sales\\..\\..\\outside.csv",
        "data.csv\x00.txt",
        "",
    ],
)
def test_landing_path_refuses_escapes(landing, write_csv, file_path):
    write_csv("data.csv", "a\n1\n")
    (landing.parent / "outside.csv").write_text("secret\n")
    with pytest.raises(LandingPathError) as raised:
        resolve_landing_path(landing, file_path)
    assert isinstance(raised.value, PermanentError)


def test_landing_path_refuses_a_symlink_pointing_outside(landing, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    os.symlink(secret, landing / "innocent.csv")
    os.symlink(tmp_path, landing / "folder")
    with pytest.raises(LandingPathError, match="outside the landing area"):
        resolve_landing_path(landing, "innocent.csv")
    with pytest.raises(LandingPathError, match="outside the landing area"):
        resolve_landing_path(landing, "folder/secret.csv")


def test_landing_path_accepts_a_symlink_inside_and_refuses_missing_files_and_folders(
    landing, write_csv
):
    target = write_csv("real/data.csv", "a\n1\n")
    os.symlink(target, landing / "alias.csv")
    assert resolve_landing_path(landing, "alias.csv") == target.resolve()
    with pytest.raises(LandingPathError, match="not found"):
        resolve_landing_path(landing, "missing.csv")
    with pytest.raises(LandingPathError, match="not a regular file"):
        resolve_landing_path(landing, "real")


# --------------------------------------------------------------------------- dialects


def test_schema_is_known_before_iteration_and_types_are_inferred(write_csv):
    path = write_csv(
        "data.csv",
        "id,amount,active,day,at,name,zip\n"
        "1,1.5,true,2024-01-31,2024-01-31 10:00:00,Ann,01234\n"
        "2,,false,2024-02-01,2024-02-01T11:30:00,,90210\n",
    )
    batches = read_csv_batches(path, file_config())
    assert batches.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("amount", pa.decimal128(18, 1)),  # fixed-point text: a decimal, never a float
            ("active", pa.bool_()),
            ("day", pa.date32()),
            ("at", pa.timestamp("us")),
            ("name", pa.string()),
            ("zip", pa.string()),  # leading zeros: a code, not a number
            ("_source_row", pa.int64()),
        ]
    )
    table = pa.Table.from_batches(list(batches))
    assert table.to_pylist() == [
        {
            "id": 1,
            "amount": Decimal("1.5"),
            "active": True,
            "day": dt.date(2024, 1, 31),
            "at": dt.datetime(2024, 1, 31, 10, 0),
            "name": "Ann",
            "zip": "01234",
            "_source_row": 1,
        },
        {
            "id": 2,
            "amount": None,
            "active": False,
            "day": dt.date(2024, 2, 1),
            "at": dt.datetime(2024, 2, 1, 11, 30),
            "name": None,
            "zip": "90210",
            "_source_row": 2,
        },
    ]
    with pytest.raises(RuntimeError):
        list(batches)


def test_timestamps_with_offsets_become_utc(write_csv):
    path = write_csv("data.csv", "at\n2024-01-31T10:00:00+02:00\n2024-01-31 10:00:00Z\n")
    table, _ = read_all(path)
    assert table.schema.field("at").type == pa.timestamp("us", "UTC")
    assert [v.hour for v in table.column("at").to_pylist()] == [8, 10]


def test_no_header_names_columns_by_position(write_csv):
    path = write_csv("data.csv", "1,Ann,3.5\n2,Bob,4.0\n")
    table, _ = read_all(path, has_header=False)
    assert table.column_names == ["column_1", "column_2", "column_3", "_source_row"]
    assert table.column("column_2").to_pylist() == ["Ann", "Bob"]
    assert table.column("_source_row").to_pylist() == [1, 2]


@pytest.mark.parametrize("delimiter", [";", "|", "\t"])
def test_delimiters(write_csv, delimiter):
    text = f"id{delimiter}city{delimiter}note\n1{delimiter}Paris{delimiter}a,b\n"
    table, _ = read_all(write_csv("data.csv", text), delimiter=delimiter)
    assert table.select(["id", "city", "note"]).to_pylist() == [
        {"id": 1, "city": "Paris", "note": "a,b"}
    ]


def test_quoted_fields_hold_delimiters_quotes_and_line_breaks(write_csv):
    text = (
        'id,comment,amount\r\n1,"hello, world",1\r\n2,"she said ""hi""",2\r\n'
        '3,"line one\nline two",3\r\n4,plain,4\r\n'
    )
    table, _ = read_all(write_csv("data.csv", text))
    assert table.column("comment").to_pylist() == [
        "hello, world",
        'she said "hi"',
        "line one\nline two",
        "plain",
    ]
    # The multi-line record is still one source row.
    assert table.column("_source_row").to_pylist() == [1, 2, 3, 4]


def test_custom_quote_and_escape_characters(write_csv):
    text = "id;note\n1;'a;b'\n2;x\\;y\n"
    table, _ = read_all(
        write_csv("data.csv", text), delimiter=";", quote_char="'", escape_char="\\"
    )
    assert table.column("note").to_pylist() == ["a;b", "x;y"]


def test_null_values_and_empty_fields_are_null(write_csv):
    text = "id,city,amount\n1,NA,n/a\n2,,3\n3,Rome,\n"
    table, _ = read_all(write_csv("data.csv", text), null_values=["NA", "n/a"])
    assert table.column("city").to_pylist() == [None, None, "Rome"]
    assert table.column("amount").to_pylist() == [None, 3, None]
    assert table.schema.field("amount").type == pa.int64()


@pytest.mark.parametrize(
    "encoding, text",
    [
        ("utf-8", "name,city\nJosé,Zürich\nZoë,Kraków €\n"),
        ("utf-8-sig", "name,city\nJosé,Zürich\nZoë,Kraków €\n"),
        ("cp1252", "name,city\nJosé,Zürich\nZoë,Paris €\n"),
        ("latin-1", "name,city\nJosé,Zürich\nZoë,Paris ¤\n"),
        ("utf-16", "name,city\nJosé,Zürich\nZoë,Kraków €\n"),
    ],
)
def test_encodings(write_csv, encoding, text):
    path = write_csv("data.csv", text, encoding=encoding)
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    table, _ = read_all(path, encoding=encoding)
    expected = [line.split(",") for line in text.splitlines()[1:]]
    assert table.column_names[:2] == ["name", "city"]  # no byte-order mark in the name
    assert [[row["name"], row["city"]] for row in table.to_pylist()] == expected


def test_bytes_the_encoding_does_not_define_fail_with_the_encoding_named(write_csv):
    path = write_csv("data.csv", b"name\nok\n\x81bad\n")
    with pytest.raises(CsvFormatError, match="cp1252"):
        read_all(path, encoding="cp1252")


def test_column_overrides_rename_and_type(write_csv):
    text = "Order ID,Total,Day,Code\n1,10.25,31/01/2024,7\n2,3.10,01/02/2024,8\n"
    table, batches = read_all(
        write_csv("data.csv", text),
        columns=[
            {"name": "Order ID", "rename": "order_id", "type": "string"},
            {"name": "Total", "type": "decimal", "precision": 10, "scale": 2},
            {"name": "Day", "type": "date", "format": "%d/%m/%Y"},
            {"name": "Code", "type": "float"},
        ],
    )
    assert batches.schema.names == ["order_id", "Total", "Day", "Code", "_source_row"]
    assert table.to_pylist()[0] == {
        "order_id": "1",
        "Total": Decimal("10.25"),
        "Day": dt.date(2024, 1, 31),
        "Code": 7.0,
        "_source_row": 1,
    }


@pytest.mark.parametrize(
    "text, config, message",
    [
        ("", {}, "is empty"),
        ("a\n1\n", {"encoding": "klingon"}, "not a known encoding"),
        ("a\n1\n", {"columns": [{"name": "b", "type": "string"}]}, "does not have"),
        ("a,b\n1,2\n", {"columns": [{"name": "a", "rename": "b"}]}, "both be named 'b'"),
        ("a\n1\n", {"columns": [{"name": "a", "type": "integer", "format": "%d"}]}, "format"),
    ],
)
def test_file_level_problems_are_reported_before_reading(write_csv, text, config, message):
    with pytest.raises(CsvFormatError, match=message):
        read_csv_batches(write_csv("data.csv", text), file_config(**config))


def test_a_header_that_repeats_a_name_names_the_repeats_as_detection_does(write_csv):
    # a_2 is taken by a later column, so the second 'a' becomes a_3 (and detection agrees).
    table, batches = read_all(write_csv("data.csv", "a,b,a,a_2\n1,2,3,4\n5,6,7,8\n"))
    assert batches.schema.names == ["a", "b", "a_3", "a_2", "_source_row"]
    assert {tuple(row.values()) for row in table.to_pylist()} == {(1, 2, 3, 4, 1), (5, 6, 7, 8, 2)}


# --------------------------------------------------------------------------- malformed rows

RAGGED = "id,name,amount\n1,a,10\n2,b\n3,c,30\n4,d,40,extra\n5,e,50\n"


def test_ragged_row_fails_naming_file_and_row(write_csv):
    with pytest.raises(MalformedRowError) as raised:
        read_all(write_csv("data.csv", RAGGED))
    error = raised.value
    assert error.source_row == 2
    assert "data.csv" in str(error) and "row 2" in str(error)
    assert "expected 3 fields, found 2" in str(error)
    assert pickle.loads(pickle.dumps(error)).source_row == 2


def test_ragged_rows_are_quarantined_and_good_rows_keep_their_numbers(write_csv):
    table, batches = read_all(write_csv("data.csv", RAGGED), malformed_rows="quarantine")
    assert table.column("id").to_pylist() == [1, 3, 5]
    assert table.column("_source_row").to_pylist() == [1, 3, 5]
    assert [(q.source_row, q.raw_line, q.reason) for q in batches.quarantined] == [
        (2, "2,b", "expected 3 fields, found 2"),
        (4, "4,d,40,extra", "expected 3 fields, found 4"),
    ]


def test_a_ragged_last_row_still_fails(write_csv):
    with pytest.raises(MalformedRowError, match="row 3"):
        read_all(write_csv("data.csv", "a,b\n1,2\n3,4\n5\n"))


def deep_file(write_csv, rows: int = 80_000, bad_row: int = 70_000) -> Path:
    """A file whose first blocks (over 1 MiB) are clean integers and one row far below
    breaks the type."""
    lines = ["id,amount,label"]
    for row in range(1, rows + 1):
        amount = "12x5" if row == bad_row else str(row * 3)
        lines.append(f"{row},{amount},label number {row}")
    return write_csv("data.csv", "\n".join(lines) + "\n")


def test_a_type_breaking_value_after_the_first_block_fails_naming_row_and_column(write_csv):
    path = deep_file(write_csv)
    assert path.stat().st_size > 2 * (1 << 20)  # two 1 MiB blocks come before row 70,000
    batches = read_csv_batches(path, file_config(), batch_rows=10_000)
    assert batches.schema.field("amount").type == pa.int64()  # inferred before row 70,000
    with pytest.raises(MalformedRowError) as raised:
        list(batches)
    error = raised.value
    assert (error.source_row, error.column) == (70_000, "amount")
    assert "row 70000 after the header, column 'amount'" in str(
        error
    ) and "'12x5' is not an integer" in str(error)


def test_a_type_breaking_value_after_the_first_block_is_quarantined(write_csv):
    batches = read_csv_batches(
        deep_file(write_csv), file_config(malformed_rows="quarantine"), batch_rows=10_000
    )
    table = pa.Table.from_batches(list(batches))
    assert table.num_rows == 79_999
    assert table.schema.field("amount").type == pa.int64()
    assert 70_000 not in set(table.column("_source_row").to_pylist())
    assert table.column("_source_row").to_pylist()[69_999] == 70_001
    [record] = batches.quarantined
    assert record.source_row == 70_000
    assert record.raw_line == "70000,12x5,label number 70000"
    assert "column 'amount'" in record.reason and "'12x5'" in record.reason


def test_batches_hold_at_most_batch_rows(write_csv):
    batches = read_csv_batches(
        deep_file(write_csv, rows=30_000, bad_row=0), file_config(), batch_rows=7_000
    )
    sizes = [batch.num_rows for batch in batches]
    assert sum(sizes) == 30_000 and max(sizes) == 7_000


def test_invalid_utf8_is_a_malformed_row(write_csv):
    path = write_csv("data.csv", b"id,name\n1,ok\n2,bad \xff byte\n3,fine\n")
    with pytest.raises(
        MalformedRowError, match=r"row 2 after the header, column 'name'.*not valid utf-8"
    ):
        read_all(path)
    table, batches = read_all(path, malformed_rows="quarantine")
    assert table.column("name").to_pylist() == ["ok", "fine"]
    [record] = batches.quarantined
    assert (record.source_row, record.raw_line) == (2, "2,bad \ufffd byte")


def test_quarantined_conversion_rows_are_re_quoted(write_csv):
    path = write_csv("data.csv", 'id,note\n1,"a, b"\nx,"say ""hi"", ok"\n')
    table, batches = read_all(
        path, malformed_rows="quarantine", columns=[{"name": "id", "type": "integer"}]
    )
    assert table.column("id").to_pylist() == [1]
    [record] = batches.quarantined
    assert record.raw_line == 'x,"say ""hi"", ok"'
    assert "column 'id': 'x' is not an integer (its declared type)" == record.reason


def test_too_many_malformed_rows_fail_even_in_quarantine(write_csv):
    text = "a,b\n" + "1\n" * 20
    with pytest.raises(MalformedRowError, match="more than 5 malformed rows"):
        list(
            read_csv_batches(
                write_csv("data.csv", text),
                file_config(malformed_rows="quarantine"),
                max_quarantined=5,
            )
        )


def test_fail_names_the_first_bad_row_even_when_a_later_ragged_row_was_parsed_ahead(write_csv):
    lines = ["id,amount,note"]
    for row in range(1, 150_001):
        if row == 140_000:
            lines.append("ragged")
        else:
            amount = "oops" if row == 50_000 else str(row)
            lines.append(f"{row},{amount},some padding text")
    path = write_csv("data.csv", "\n".join(lines) + "\n")
    batches = read_csv_batches(path, file_config(), batch_rows=1_000)
    assert batches.schema.field("amount").type == pa.int64()  # row 50,000 is past the sample
    with pytest.raises(MalformedRowError) as raised:
        list(batches)
    assert (raised.value.source_row, raised.value.column) == (50_000, "amount")


def test_closing_early_stops_the_parsing_thread(write_csv):
    path = deep_file(write_csv, rows=200_000, bad_row=0)
    batches = read_csv_batches(path, file_config(), batch_rows=1_000)
    iterator = iter(batches)
    next(iterator)
    batches.close()
    assert not [t for t in threading.enumerate() if t.name == "flowforge-prefetch"]


# --------------------------------------------------------------------------- local number formats


def test_numbers_written_the_local_way_load_as_exact_decimals(write_csv):
    path = write_csv("eu.csv", "id;price;total\n1;1.234,56;€ 1.000,00\n2;-7,10;€ 12,5\n3;;\n")
    table, _ = read_all(
        path,
        delimiter=";",
        columns=[
            {
                "name": "price",
                "type": "decimal",
                "precision": 12,
                "scale": 2,
                "decimalSeparator": ",",
                "thousandsSeparator": ".",
            },
            {
                "name": "total",
                "type": "decimal",
                "precision": 12,
                "scale": 2,
                "decimalSeparator": ",",
                "thousandsSeparator": ".",
                "currencySymbol": "€",
            },
        ],
    )
    assert table.column("price").to_pylist() == [Decimal("1234.56"), Decimal("-7.10"), None]
    assert table.column("total").to_pylist() == [Decimal("1000.00"), Decimal("12.50"), None]


def test_a_value_that_breaks_the_number_format_names_row_and_column(write_csv):
    path = write_csv("bad.csv", 'id,amount\n1,"$1,200.50"\n2,"$ twelve"\n')
    columns = [
        {
            "name": "amount",
            "type": "decimal",
            "precision": 12,
            "scale": 2,
            "thousandsSeparator": ",",
            "currencySymbol": "$",
        }
    ]
    with pytest.raises(MalformedRowError) as error:
        read_all(path, columns=columns)
    assert "amount" in str(error.value) and "row 2" in str(error.value)
    table, batches = read_all(path, columns=columns, malformedRows="quarantine")
    assert table.column("amount").to_pylist() == [Decimal("1200.50")]
    assert [row.source_row for row in batches.quarantined] == [2]


def test_booleans_in_the_files_own_spelling(write_csv):
    path = write_csv("b.csv", "id,opt_in\n1,Yes\n2,no\n3,\n4,Y\n")
    table, _ = read_all(
        path,
        columns=[
            {
                "name": "opt_in",
                "type": "boolean",
                "trueValues": ["yes", "y"],
                "falseValues": ["no", "n"],
            }
        ],
    )
    assert table.column("opt_in").to_pylist() == [True, False, None, True]
    with pytest.raises(MalformedRowError):
        read_all(
            path,
            columns=[
                {"name": "opt_in", "type": "boolean", "trueValues": ["yes"], "falseValues": ["no"]}
            ],
        )


@pytest.mark.parametrize(
    "fmt, good, expected",
    [
        (
            "%Y-%m-%d %H:%M:%S",
            ["2024-02-29 23:59:59", "0001-01-01 00:00:00"],
            [dt.datetime(2024, 2, 29, 23, 59, 59), dt.datetime(1, 1, 1)],
        ),
        (
            "%Y-%m-%dT%H:%M:%S%z",
            ["2024-01-01T00:00:00+02:00", "2024-01-01T00:00:00Z", "2024-01-01T05:30:00+0530"],
            [dt.datetime(2023, 12, 31, 22, tzinfo=dt.UTC), dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]
            + [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)],
        ),
    ],
)
def test_a_declared_iso_timestamp_format_is_read_strictly(write_csv, fmt, good, expected):
    # ISO values of the format's exact shape take Arrow's ISO cast; anything else (another
    # shape, an impossible day or time) the strict parse, which names the row at fault.
    sep = fmt[8]
    bad = [f"2023-02-29{sep}10:00:00", f"2024-01-01{sep}24:00:00", "2024-01-01"]
    zone = "+00:00" if "%z" in fmt else ""
    lines = good + [value + zone if ":" in value else value for value in bad]
    path = write_csv("ts.csv", "id,at\n" + "".join(f"{i},{v}\n" for i, v in enumerate(lines, 1)))
    columns = [{"name": "at", "type": "timestamp", "format": fmt}]
    with pytest.raises(MalformedRowError) as error:
        read_all(path, columns=columns)
    assert "'at'" in str(error.value) and f"row {len(good) + 1}" in str(error.value)
    table, batches = read_all(path, columns=columns, malformedRows="quarantine")
    assert table.column("at").to_pylist() == expected
    assert [row.source_row for row in batches.quarantined] == list(
        range(len(good) + 1, len(lines) + 1)
    )
    # The strict parse takes an offset Arrow's cast refuses (+24:00): still read the same.
    if zone:
        path = write_csv("odd.csv", "at\n2024-01-02T00:00:00+24:00\n2024-01-02T00:00:00Z\n")
        table, _ = read_all(path, columns=columns)
        assert table.column("at").to_pylist() == [
            dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        ]


def test_a_quoted_empty_value_of_a_typed_column_is_null(write_csv):
    # A typed column's values are converted first and "" looked for only when the
    # conversion refuses the batch: it must refuse "" for every type but text.
    for data_type in (
        pa.int64(),
        pa.float64(),
        pa.decimal128(18, 2),
        pa.bool_(),
        pa.date32(),
        pa.timestamp("us"),
        pa.timestamp("us", "UTC"),
    ):
        with pytest.raises(pa.ArrowInvalid):
            pa.array([""]).cast(data_type)
    text = 'n,i,d,f,b,day,at,s\n1,"","","","","","",""\n2,7,1.50,2.5,true,2024-01-02,2024-01-02 03:04:05,x\n'
    columns = [
        {"name": "d", "type": "decimal", "precision": 18, "scale": 2},
        {"name": "f", "type": "float"},
        {"name": "b", "type": "boolean"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "timestamp"},
    ]
    table, batches = read_all(write_csv("empty.csv", text), columns=columns)
    assert batches.schema.field("i").type == pa.int64()  # inferred
    assert table.to_pylist() == [
        {"n": 1, "i": None, "d": None, "f": None, "b": None, "day": None, "at": None}
        | {"s": "", "_source_row": 1},
        {"n": 2, "i": 7, "d": Decimal("1.50"), "f": 2.5, "b": True, "day": dt.date(2024, 1, 2)}
        | {"at": dt.datetime(2024, 1, 2, 3, 4, 5), "s": "x", "_source_row": 2},
    ]


def test_number_format_on_a_text_column_is_refused(write_csv):
    path = write_csv("t.csv", "id,name\n1,a\n")
    with pytest.raises(CsvFormatError, match="decimalSeparator"):
        read_all(path, columns=[{"name": "name", "type": "string", "decimalSeparator": ","}])


# --------------------------------------------------------------------------- quotes and long rows
# A quote that never closes, or a row longer than 1 MiB, is one malformed row: reading goes
# on at the line after the one where it began (flowforge_shared.csv_rules).


def rows_of(table: pa.Table) -> set[tuple]:
    return {tuple(row.values()) for row in table.to_pylist()}


def test_a_quote_open_at_the_end_of_the_file_is_a_malformed_row(write_csv):
    path = write_csv("data.csv", 'id,name\n1,"abc\n2,def\n3,ghi\n')
    with pytest.raises(MalformedRowError, match="row 1 after the header: a quote opened"):
        read_all(path)
    table, batches = read_all(path, malformed_rows="quarantine")
    assert rows_of(table) == {(2, "def", 2), (3, "ghi", 3)}
    assert [(q.source_row, q.raw_line) for q in batches.quarantined] == [(1, '1,"abc')]
    assert "never closes" in batches.quarantined[0].reason


def test_a_last_line_cut_inside_a_quote_is_malformed_and_a_ragged_one_too(write_csv):
    table, batches = read_all(
        write_csv("data.csv", 'id,name\n1,a\n2,"b'), malformed_rows="quarantine"
    )
    assert rows_of(table) == {(1, "a", 1)}
    assert [(q.source_row, q.raw_line) for q in batches.quarantined] == [(2, '2,"b')]
    # Three columns: the swallowed lines make the record ragged; still only its row is lost.
    table, batches = read_all(
        write_csv("ragged.csv", 'a,b,c\n1,"x\n2,y,z\n3,u,v\n'), malformed_rows="quarantine"
    )
    assert rows_of(table) == {(2, "y", "z", 2), (3, "u", "v", 3)}
    assert [(q.source_row, q.raw_line) for q in batches.quarantined] == [(1, '1,"x')]


@pytest.mark.parametrize(
    "text",
    ['id,note\n1,"two\nlines"\n', 'id,note\n1,"ends with a break\n"\n', 'id,note\n1,"a""\nb"'],
)
def test_a_closed_multi_line_value_at_the_end_is_not_malformed(write_csv, text):
    table, batches = read_all(write_csv("data.csv", text))
    assert table.num_rows == 1 and batches.quarantined == []


def test_a_quote_still_open_after_1_mib_costs_one_row(write_csv):
    # A stray quote in row 2 is "closed" by another one 30,000 lines later: without the
    # bound the rows between would vanish into one value.
    pad = "p" * 40  # 30,000 lines of ~55 bytes: the quote stays open over 1.5 MiB
    lines = [f"{i},name {i} {pad}" for i in range(1, 40_001)]
    lines[1] = '2,"stray'
    lines[30_000] = '30001,closes" here'
    path = write_csv("data.csv", "id,name\n" + "\n".join(lines) + "\n")
    table, batches = read_all(path, malformed_rows="quarantine")
    expected = {(i, f"name {i} {pad}", i) for i in range(1, 40_001) if i not in (2, 30_001)}
    # The closing quote's row is read as it stands once the reader is back in step.
    assert rows_of(table) == expected | {(30_001, 'closes" here', 30_001)}
    [record] = batches.quarantined
    assert (record.source_row, record.raw_line) == (2, '2,"stray')
    assert "still open after 1 MiB" in record.reason


@pytest.mark.parametrize("size", [int(1.5 * (1 << 20)), 3 << 20])
def test_a_row_longer_than_1_mib_is_set_aside_whole_and_the_rows_after_load(write_csv, size):
    # 1.5 MiB: pyarrow reads it, the reader refuses it; 3 MiB: pyarrow cannot read it at all.
    lines = [f"{i},short {i}" for i in range(1, 3001)]
    lines[1500] = "1501," + "w" * size
    path = write_csv("data.csv", "id,note\n" + "\n".join(lines) + "\n")
    with pytest.raises(MalformedRowError, match="row 1501 after the header: the row is longer"):
        read_all(path)
    table, batches = read_all(path, malformed_rows="quarantine")
    assert rows_of(table) == {(i, f"short {i}", i) for i in range(1, 3001) if i != 1501}
    [record] = batches.quarantined
    assert record.source_row == 1501 and record.raw_line == lines[1500]  # whole, not cut
    assert "longer than 1 MiB" in record.reason


def test_a_field_over_128_kb_loads_whole(write_csv):
    big = "v" * 300_000
    table, _ = read_all(write_csv("data.csv", f'id,note\n1,{big}\n2,"{big}, quoted"\n'))
    assert rows_of(table) == {(1, big, 1), (2, f"{big}, quoted", 2)}


def test_a_type_inferred_from_the_first_rows_is_checked_against_the_whole_first_block(write_csv):
    # Integers for 12,000 rows, then fixed-point amounts and a wider one: the column is a
    # decimal wide enough for all of them, not an integer column with malformed rows.
    rows = [f"{i},{i}" for i in range(12_000)] + ["12000,10.50", "12001,123456789012345678901.25"]
    path = write_csv("data.csv", "id,amount\n" + "\n".join(rows) + "\n")
    batches = read_csv_batches(path, file_config())
    amount = batches.schema.field("amount").type
    assert pa.types.is_decimal(amount) and amount.scale == 2 and amount.precision >= 23
    table = pa.Table.from_batches(list(batches))
    assert table.num_rows == 12_002 and not batches.quarantined
    assert table.column("amount")[-1].as_py() == Decimal("123456789012345678901.25")


# --------------------------------------------------------------------------- issue 12 dialects


def test_the_space_delimiter_reads_runs_of_spaces_as_one_separator(write_csv):
    text = (
        "  id    name           note\r\n"
        '   1    "Ann  Smith"   "two  spaces"\r\n'
        '  20    Bob            "a line\r\n   and  more"   \r\n'
        "\r\n"
        ' 300    "Cid"          x\r\n'
    )
    table, _ = read_all(write_csv("data.csv", text), delimiter=" ")
    assert table.column_names == ["id", "name", "note", "_source_row"]
    assert table.column("id").to_pylist() == [1, 20, 300]
    assert table.column("name").to_pylist() == ["Ann  Smith", "Bob", "Cid"]
    assert table.column("note").to_pylist() == ["two  spaces", "a line\r\n   and  more", "x"]
    assert table.column("_source_row").to_pylist() == [1, 2, 3]


def test_the_space_delimiter_copy_is_deleted_when_the_stream_is_closed(write_csv):
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("flowforge-table-*"))
    batches = read_csv_batches(
        write_csv("data.csv", "a  b\n1  2\n"), file_config(delimiter=" "), source_name="d"
    )
    assert len(set(Path(tempfile.gettempdir()).glob("flowforge-table-*")) - before) == 1
    batches.close()
    assert set(Path(tempfile.gettempdir()).glob("flowforge-table-*")) == before


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [('"a","b"\n"1",0.5,2\n"2",0.7,3\n', ","), ('"a" "b"\n"x"   0.5  2\n"y" 0.7 3\n', " ")],
)
def test_r_titles_over_row_names_name_the_first_column_by_position(write_csv, text, delimiter):
    table, _ = read_all(write_csv("data.csv", text), delimiter=delimiter)
    assert table.column_names == ["column_1", "a", "b", "_source_row"]
    assert [str(v) for v in table.column("a").to_pylist()] == ["0.5", "0.7"]
    assert table.column("b").to_pylist() == [2, 3]


# --------------------------------------------------------------------------- skipRows, commentChar


def test_skip_rows_counts_physical_lines_even_with_a_stray_quote_in_the_preamble(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('Report "draft\n\nid,name\n1,a\n2,b\n')
    table, _ = read_all(path, skip_rows=2)
    assert table.column("id").to_pylist() == [1, 2]
    assert table.column("_source_row").to_pylist() == [1, 2]


def test_a_comment_char_inside_a_quoted_value_over_lines_is_data(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(
        '\ufeff# made by x\nid,note\n1,"first\n# not a comment"\n# one\n2,b\n'.encode()
    )
    table, _ = read_all(path, comment_char="#", encoding="utf-8")
    assert table.column("id").to_pylist() == [1, 2]
    assert table.column("note").to_pylist() == ["first\n# not a comment", "b"]


def test_skip_rows_beyond_the_file_fails_saying_how_many_lines_it_has(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id\n1\n2\n")
    with pytest.raises(CsvFormatError, match=r"has 3 lines, and fileConfig.skipRows skips 3"):
        read_all(path, skip_rows=3)


@pytest.mark.parametrize("comment", [",", '"'])
def test_a_comment_char_that_is_the_delimiter_or_the_quote_is_refused(tmp_path, comment):
    path = tmp_path / "data.csv"
    path.write_text("id\n1\n")
    with pytest.raises(CsvFormatError, match="commentChar must differ"):
        read_all(path, comment_char=comment)

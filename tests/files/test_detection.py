"""CSV schema detection (heuristic): the awkward-file corpus, each file either detected and
loaded by the ingest reader with the detected types, or refused with a clear error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from flowforge_catalog.files.detection import (
    Detection,
    DetectionError,
    LocalFileSource,
    detect,
    neutralise_for_export,
    preview,
    to_file_config,
)
from flowforge_catalog.files.detection.dialect import Dialect, resync
from flowforge_ingest.csv_source import read_csv_batches
from flowforge_ingest.errors import MalformedRowError
from flowforge_shared.contracts.jobs import FileConfig
from tests.files import corpus


def detect_file(path: Path, **options) -> Detection:
    return detect(LocalFileSource(path), **options)


def load(path: Path, detection: Detection, **extra) -> tuple[pa.Table, object]:
    """The file read by the ingest reader with the suggested fileConfig."""
    config = FileConfig.model_validate(to_file_config(detection) | {"filePath": "x"} | extra)
    batches = read_csv_batches(path, config)
    return pa.Table.from_batches(list(batches), schema=batches.schema), batches


def column(detection: Detection, name: str):
    return next(c for c in detection.columns if c.name == name)


def _arrow_type(override: dict) -> Callable[[pa.DataType], bool]:
    kind = override["type"]
    if kind == "decimal":
        return lambda t: t == pa.decimal128(override["precision"], override["scale"])
    return {
        "integer": pa.types.is_int64,
        "float": pa.types.is_float64,
        "boolean": pa.types.is_boolean,
        "date": pa.types.is_date32,
        "timestamp": pa.types.is_timestamp,
        "string": pa.types.is_string,
    }[kind]


class _CountingSource:
    def __init__(self, path: Path) -> None:
        self._source = LocalFileSource(path)
        self.size = self._source.size
        self.bytes_read = 0

    def read_range(self, offset: int, length: int) -> bytes:
        data = self._source.read_range(offset, length)
        self.bytes_read += len(data)
        return data


# --------------------------------------------------------------------------- every file loads

LOADABLE = {
    "semicolon": (corpus.semicolon_decimal_comma, 40),
    "cp1252": (corpus.cp1252_accented, 3),
    "bom": (corpus.utf8_bom, 3),
    "utf16le": (lambda d: corpus.utf16(d, "le"), 3),
    "utf16be": (lambda d: corpus.utf16(d, "be"), 3),
    "quoted": (corpus.quoted_newlines, 3000),
    "header_only": (corpus.header_only, 0),
    "wide": (corpus.wide, 20),
    "all_null": (corpus.all_null_column, 20),
    "dates": (corpus.three_date_formats, 30),
    "ambiguous": (corpus.ambiguous_dates, 12),
    "currency": (corpus.currency_amounts, 20),
    "head_tail": (corpus.head_integers_tail_decimals, 100_000),
    "people": (corpus.people, 24),
    "escaped": (corpus.escaped_quotes, 3),
    "tabs": (corpus.tab_delimited, 3),
    "pipes_cr": (corpus.pipe_delimited_cr, 3),
    "headerless": (corpus.headerless, 3),
    "mostly": (corpus.mostly_integers, 40),
    "timestamps": (corpus.timestamps, 20),
    "injection": (corpus.injection, 5),
}


@pytest.mark.parametrize("name", sorted(LOADABLE))
def test_every_detected_file_loads_all_rows_with_the_detected_types(corpus_dir, name):
    generate, rows = LOADABLE[name]
    path = generate(corpus_dir)
    detection = detect_file(path, sample_bytes=64 * 1024)
    table, _ = load(path, detection)
    assert table.num_rows == rows
    config = to_file_config(detection)
    assert [override["name"] for override in config["columns"]] == table.column_names[:-1]
    for override in config["columns"]:
        field_type = table.schema.field(override["name"]).type
        assert _arrow_type(override)(field_type), (override, field_type)


def test_detection_answer_has_the_promised_camel_case_shape(corpus_dir):
    wire = detect_file(corpus.people(corpus_dir)).model_dump(mode="json", by_alias=True)
    assert {
        "encoding",
        "delimiter",
        "quoteChar",
        "escapeChar",
        "hasHeader",
        "lineEnding",
        "rowCountEstimate",
        "columns",
        "candidatePrimaryKeys",
        "suggestedPrimaryKey",
        "warnings",
    } <= set(wire)
    assert {
        "name",
        "type",
        "precision",
        "scale",
        "format",
        "nullable",
        "nullTokens",
        "distinctRatio",
        "min",
        "max",
        "examples",
        "semanticType",
        "pii",
        "description",
        "suggestedName",
        "source",
    } <= set(wire["columns"][0])


# --------------------------------------------------------------------------- dialects, encodings


def test_semicolon_file_with_decimal_commas(corpus_dir):
    path = corpus.semicolon_decimal_comma(corpus_dir)
    detection = detect_file(path)
    assert (detection.delimiter, detection.has_header) == (";", True)
    price = column(detection, "price")
    assert (price.type, price.precision, price.scale) == ("decimal", 6, 2)
    assert price.number_format.decimal_separator == ","
    assert price.number_format.thousands_separator == "."
    assert price.format == "#.##0,00"
    assert (price.min, price.max) == ("123,01", "4.936,40")
    total = column(detection, "total")
    assert total.number_format.currency_symbol == "€"
    assert total.format == "0,0 €"
    assert total.semantic_type == "currency_amount"
    weight = column(detection, "weight_kg")
    assert (weight.type, weight.number_format.decimal_separator) == ("decimal", ",")
    # The suggested config tells the reader how these numbers are written: they load as
    # exact decimals, with no warning.
    assert not any("'price'" in w for w in detection.warnings)
    table, _ = load(path, detection)
    assert table.column("price")[1].as_py() == Decimal("246.02")


def test_cp1252_names_are_decoded(corpus_dir):
    path = corpus.cp1252_accented(corpus_dir)
    detection = detect_file(path)
    assert detection.encoding == "cp1252"
    assert detection.line_ending == "crlf"
    assert column(detection, "first_name").examples == ["José", "Zoë", "François"]
    table, _ = load(path, detection)
    assert table.column("last_name").to_pylist() == ["Müller", "Ångström", "Ñúñez"]
    # "€ 10" decoded from cp1252's 0x80: an amount in euros, loaded as the number
    assert column(detection, "note").number_format.currency_symbol == "€"
    assert table.column("note").to_pylist()[0] == Decimal("10")


def test_utf8_bom_is_not_part_of_the_first_column_name(corpus_dir):
    path = corpus.utf8_bom(corpus_dir)
    detection = detect_file(path)
    assert detection.encoding == "utf-8-sig"
    assert [c.name for c in detection.columns] == ["id", "name", "score"]
    table, _ = load(path, detection)
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("score").to_pylist() == [Decimal("3.50"), Decimal("4.25"), Decimal("1.00")]


@pytest.mark.parametrize("byte_order", ["le", "be"])
def test_utf16_with_a_byte_order_mark(corpus_dir, byte_order):
    path = corpus.utf16(corpus_dir, byte_order)
    detection = detect_file(path)
    assert detection.encoding == "utf-16"
    assert column(detection, "joined").format == "%Y-%m-%d"
    table, _ = load(path, detection)
    assert table.column("name").to_pylist() == ["Ana", "Zoë", "Bo"]
    assert table.column("joined")[0].as_py() == dt.date(2024, 1, 5)


def test_utf16_without_a_byte_order_mark(corpus_dir):
    path = corpus.write(corpus_dir, "nobom.csv", "id,name\n1,Zoë\n2,Ana\n", "utf-16-le")
    detection = detect_file(path)
    assert detection.encoding == "utf-16-le"
    table, _ = load(path, detection)
    assert table.column("name").to_pylist() == ["Zoë", "Ana"]


def test_escape_tab_and_pipe_dialects(corpus_dir):
    escaped = detect_file(corpus.escaped_quotes(corpus_dir))
    assert (escaped.escape_char, escaped.quote_char) == ("\\", '"')
    assert column(escaped, "quote").examples[0] == 'He said "hi" to me'
    tabs = detect_file(corpus.tab_delimited(corpus_dir))
    assert tabs.delimiter == "\t"
    assert column(tabs, "city").examples[0] == "Paris, FR"
    pipes = detect_file(corpus.pipe_delimited_cr(corpus_dir))
    assert (pipes.delimiter, pipes.line_ending) == ("|", "cr")
    assert column(pipes, "flag").type == "boolean"


def test_headerless_file_gets_position_names(corpus_dir):
    path = corpus.headerless(corpus_dir)
    detection = detect_file(path)
    assert detection.has_header is False
    assert [(c.name, c.type) for c in detection.columns] == [
        ("column_1", "integer"),
        ("column_2", "date"),
        ("column_3", "decimal"),
    ]
    assert detection.row_count_estimate == 3
    table, _ = load(path, detection)
    assert table.column("column_1").to_pylist() == [1, 2, 3]


# --------------------------------------------------------------------------- sampling


def test_quoted_newlines_survive_chunks_that_start_inside_a_value(corpus_dir):
    path = corpus.quoted_newlines(corpus_dir)
    source = _CountingSource(path)
    detection = detect(source, sample_bytes=32 * 1024)
    assert source.bytes_read < 40 * 1024  # sampled: the file is ~300 KB
    assert detection.row_count_exact is False
    assert detection.warnings == []  # no ragged rows: every chunk was re-aligned
    assert [c.type for c in detection.columns] == ["integer", "string", "decimal", "date"]
    assert column(detection, "comment").examples[0] == (
        'line one of 1, with a comma\nline two "quoted"\nline, three'
    )
    assert 2700 <= detection.row_count_estimate <= 3300
    assert detection.line_ending == "crlf"


def test_resync_skips_lines_that_are_inside_a_quoted_value():
    dialect = Dialect(",", '"', None, "lf")
    # The chunk starts inside a quoted value whose second line looks like a record of
    # the right width; only the line after the closing quote is a boundary.
    text = 'first\n5,6,7\nlast",8,9\n"a\nb",1,2\n10,11,12\n'
    assert resync(text, dialect, 3) == (text.index('"a'), True)
    # Inside a value in the first column: the tail "b\"" tokenizes only as a stray quote.
    text = 'b",1\n"c\nd",2\n3,4\n'
    assert resync(text, dialect, 2) == (text.index('"c'), True)


def test_sampling_sees_decimals_in_the_tail_of_the_file(corpus_dir):
    path = corpus.head_integers_tail_decimals(corpus_dir)
    source = _CountingSource(path)
    detection = detect(source, sample_bytes=64 * 1024)
    assert source.bytes_read <= 64 * 1024 + 4096  # the sample and the encoding sniff
    amount = column(detection, "amount")
    assert (amount.type, amount.precision, amount.scale) == ("decimal", 5, 2)
    assert 90_000 <= detection.row_count_estimate <= 110_000
    table, _ = load(path, detection)
    assert table.column("amount")[-1].as_py() == Decimal("0.05")
    # The reader alone infers from the head and fails on the tail: detection is why it loads.
    plain = FileConfig.model_validate({"filePath": "x"})
    with pytest.raises(MalformedRowError, match="amount"):
        list(read_csv_batches(path, plain, batch_rows=1000))


def test_a_small_file_is_read_whole_and_counted_exactly(corpus_dir):
    detection = detect_file(corpus.three_date_formats(corpus_dir))
    assert (detection.row_count_exact, detection.row_count_estimate) == (True, 30)


def test_a_thousand_columns(corpus_dir):
    path = corpus.wide(corpus_dir)
    detection = detect_file(path)
    assert len(detection.columns) == 1000
    assert {c.type for c in detection.columns} == {"integer"}
    assert column(detection, "c999").max == "19999"
    assert detection.row_count_estimate == 20


# --------------------------------------------------------------------------- refused files


@pytest.mark.parametrize(
    ("generate", "message"),
    [
        (corpus.empty, "empty"),
        (corpus.blank_lines, "no data"),
        (corpus.binary_renamed, "NUL byte"),
        (corpus.binary_without_nul, "does not look like CSV text"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(corpus_dir, generate, message):
    with pytest.raises(DetectionError, match=message) as raised:
        detect_file(generate(corpus_dir))
    assert isinstance(raised.value, ValueError)


# --------------------------------------------------------------------------- shape problems


def test_header_only_file(corpus_dir):
    path = corpus.header_only(corpus_dir)
    detection = detect_file(path)
    assert detection.has_header is True
    assert [c.name for c in detection.columns] == ["id", "name", "amount"]
    assert detection.row_count_estimate == 0
    assert "the file has a header and no data rows" in detection.warnings
    assert preview(LocalFileSource(path), detection) == []


def test_ragged_rows_warn_and_load_with_quarantine(corpus_dir):
    path = corpus.ragged(corpus_dir)
    detection = detect_file(path)
    [warning] = detection.warnings
    assert "2 of 5 sampled rows" in warning and "the first is row 2, with 2 fields" in warning
    with pytest.raises(MalformedRowError, match="row 2"):
        load(path, detection)[0]
    table, batches = load(path, detection, malformedRows="quarantine")
    assert table.column("id").to_pylist() == [1, 3, 5]
    assert [row.source_row for row in batches.quarantined] == [2, 4]


def test_all_null_column(corpus_dir):
    detection = detect_file(corpus.all_null_column(corpus_dir))
    nothing = column(detection, "nothing")
    assert (nothing.type, nothing.nullable, nothing.distinct_ratio) == ("string", True, None)
    assert nothing.null_tokens == ["", "NULL"]
    assert any("'nothing' is empty (null) in every sampled row" in w for w in detection.warnings)
    assert column(detection, "value").nullable is False


def test_a_type_that_fits_most_values_warns(corpus_dir):
    path = corpus.mostly_integers(corpus_dir)
    detection = detect_file(path)
    quantity = column(detection, "quantity")
    assert quantity.type == "string"
    [warning] = [w for w in detection.warnings if "'quantity'" in w]
    assert "98% of the sampled values are integer, but not 'unknown'" in warning
    score = column(detection, "score")
    assert (score.type, score.null_tokens, score.nullable) == ("integer", ["NA", "-"], True)
    table, _ = load(path, detection)
    assert table.column("score").null_count == 9


def test_a_null_token_that_is_data_in_another_column_is_not_a_null(corpus_dir):
    text = "id,score,country\n" + "".join(
        f"{i},{'NA' if i % 4 == 0 else i},{'NA' if i % 3 == 0 else 'FR'}\n" for i in range(1, 13)
    )
    path = corpus.write(corpus_dir, "conflict.csv", text)
    detection = detect_file(path)
    assert column(detection, "score").type == "string"
    assert "NA" not in to_file_config(detection)["nullValues"]
    assert any("'score' uses 'NA' for missing values" in w for w in detection.warnings)
    table, _ = load(path, detection)
    assert table.column("country").to_pylist()[2] == "NA"  # Namibia survives the load


# --------------------------------------------------------------------------- types


def test_dates_in_three_formats(corpus_dir):
    path = corpus.three_date_formats(corpus_dir)
    detection = detect_file(path)
    assert [(c.name, c.type, c.format) for c in detection.columns[1:]] == [
        ("iso", "date", "%Y-%m-%d"),
        ("day_first", "date", "%d/%m/%Y"),
        ("month_first", "date", "%m/%d/%Y"),
    ]
    assert column(detection, "day_first").min == "12/01/2024"
    table, _ = load(path, detection)
    for name in ("iso", "day_first", "month_first"):
        assert table.column(name)[0].as_py() == dt.date(2024, 2, 1)


def test_ambiguous_dates_say_so(corpus_dir):
    path = corpus.ambiguous_dates(corpus_dir)
    detection = detect_file(path)
    event = column(detection, "event_date")
    assert (event.type, event.format, event.ambiguous) == ("date", None, True)
    assert event.format_candidates == ["%d/%m/%Y", "%m/%d/%Y"]
    assert any("'event_date': ambiguous date format" in w for w in detection.warnings)
    assert {"name": "event_date", "type": "string"} in to_file_config(detection)["columns"]
    table, _ = load(path, detection)
    assert table.column("event_date")[0].as_py() == "01/12/2024"


def test_currency_symbols_and_thousands_separators(corpus_dir):
    detection = detect_file(corpus.currency_amounts(corpus_dir))
    usd, eur, gbp, visitors = (column(detection, n) for n in ("usd", "eur", "gbp", "visitors"))
    assert (usd.type, usd.format, usd.scale) == ("decimal", "$#,##0.00", 2)
    assert (usd.min, usd.max) == ("-$180.00", "$24,690.00")
    assert eur.format == "#.##0,00 €"
    assert eur.number_format.model_dump(by_alias=True) == {
        "decimalSeparator": ",",
        "thousandsSeparator": ".",
        "currencySymbol": "€",
    }
    assert (gbp.format, gbp.precision) == ("£0.00", 4)
    assert (visitors.type, visitors.scale, visitors.format) == ("decimal", 0, "#,##0")
    assert {usd.semantic_type, eur.semantic_type, gbp.semantic_type} == {"currency_amount"}
    assert visitors.semantic_type is None


def test_timestamps_naive_with_offset_and_day_first(corpus_dir):
    path = corpus.timestamps(corpus_dir)
    detection = detect_file(path)
    formats = {c.name: (c.type, c.format) for c in detection.columns}
    assert formats["created_at"] == ("timestamp", "%Y-%m-%d %H:%M:%S")
    assert formats["updated_at"] == ("timestamp", "%Y-%m-%dT%H:%M:%S.%f%z")
    assert formats["logged"] == ("timestamp", "%d/%m/%Y %H:%M")
    table, _ = load(path, detection)
    assert table.schema.field("updated_at").type == pa.timestamp("us", "UTC")
    assert table.column("logged")[0].as_py() == dt.datetime(2024, 3, 1, 11, 30)


def test_booleans_in_their_common_spellings(corpus_dir):
    text = "id,yes_no,tf,is_active,count01\n1,yes,T,1,1\n2,No,f,0,0\n3,YES,t,1,0\n"
    path = corpus.write(corpus_dir, "bools.csv", text)
    detection = detect_file(path)
    types = {c.name: c.type for c in detection.columns}
    # 1/0 is a boolean only when the column is named like a flag.
    assert types == {
        "id": "integer",
        "yes_no": "boolean",
        "tf": "boolean",
        "is_active": "boolean",
        "count01": "integer",
    }
    table, _ = load(path, detection)
    assert table.column("is_active").to_pylist() == [True, False, True]
    assert table.column("yes_no").to_pylist() == [True, False, True]  # trueValues/falseValues
    assert table.column("tf").to_pylist() == [True, False, True]
    assert not any("'yes_no'" in w for w in detection.warnings)


def test_leading_zero_codes_and_wide_integers(corpus_dir):
    text = "code,big,ratio\n007,12345678901234567890123,1.5e3\n010,1,2.5\n"
    detection = detect_file(corpus.write(corpus_dir, "codes.csv", text))
    code, big, ratio = detection.columns
    assert (code.type, code.min, code.max) == ("string", "007", "010")
    assert (big.type, big.precision, big.scale) == ("decimal", 23, 0)
    assert ratio.type == "float"


# --------------------------------------------------------------------------- meaning and keys


def test_pii_and_semantic_tags(corpus_dir):
    detection = detect_file(corpus.people(corpus_dir))
    tags = {c.name: (c.semantic_type, c.pii) for c in detection.columns}
    assert tags == {
        "customer_id": (None, False),
        "first_name": ("person_name", True),
        "last_name": ("person_name", True),
        "email": ("email", True),
        "phone": ("phone", True),
        "ssn": ("ssn", True),
        "card": ("card_number", True),
        "account_number": ("account_number", True),
        "zip": ("postal_code", True),
        "state": ("state_code", False),
        "country": ("country_code", False),
        "date_of_birth": ("date_of_birth", True),
        "balance": ("currency_amount", False),
        "is_active": (None, False),
        "ssn_last4": ("ssn_last4", True),
    }
    email = column(detection, "email")
    assert email.source == "heuristic"
    assert email.provenance == {"semanticType": "heuristic", "pii": "heuristic"}


def test_candidate_and_suggested_primary_keys(corpus_dir):
    text = "Order Number,customerId,amount,code\n" + "".join(
        f"{i},{i % 3},{i}.5,C{i}\n" for i in range(1, 11)
    )
    detection = detect_file(corpus.write(corpus_dir, "keys.csv", text))
    # customerId repeats; amount has decimals; the code column is unique but not key-named.
    assert detection.candidate_primary_keys == ["Order Number", "code"]
    assert detection.suggested_primary_key == "Order Number"
    assert [c.suggested_name for c in detection.columns] == [
        "order_number",
        "customer_id",
        None,
        None,
    ]
    assert column(detection, "Order Number").provenance == {"suggestedName": "heuristic"}


def test_no_primary_key_is_suggested_without_a_key_like_name(corpus_dir):
    detection = detect_file(corpus.headerless(corpus_dir))
    assert detection.candidate_primary_keys == ["column_1"]  # dates and decimals never qualify
    assert detection.suggested_primary_key is None


# --------------------------------------------------------------------------- preview, export


def test_preview_returns_values_exactly_as_in_the_file(corpus_dir):
    path = corpus.injection(corpus_dir)
    detection = detect_file(path)
    rows = preview(LocalFileSource(path), detection, rows=10)
    assert [row["formula"] for row in rows] == [
        "=1+2",
        "+SUM(A1)",
        "-5",
        "@cmd",
        '=HYPERLINK("http://x")',
    ]


def test_preview_of_quoted_newlines_ragged_rows_and_encodings(corpus_dir):
    quoted = corpus.quoted_newlines(corpus_dir)
    rows = preview(LocalFileSource(quoted), detect_file(quoted), rows=2)
    assert rows[1] == {
        "id": "2",
        "comment": 'line one of 2, with a comma\nline two "quoted"\nline, three',
        "amount": "2.02",
        "created": "2024-01-03",
    }
    ragged = corpus.ragged(corpus_dir)
    assert preview(LocalFileSource(ragged), detect_file(ragged))[1] == {
        "id": "2",
        "name": "Bo",
        "amount": None,
    }
    utf16 = corpus.utf16(corpus_dir, "be")
    assert preview(LocalFileSource(utf16), detect_file(utf16), rows=1) == [
        {"id": "1", "name": "Ana", "joined": "2024-01-05"}
    ]


def test_preview_reads_only_the_head_of_a_large_file(corpus_dir):
    path = corpus.head_integers_tail_decimals(corpus_dir)
    detection = detect_file(path, sample_bytes=64 * 1024)
    source = _CountingSource(path)
    rows = preview(source, detection, rows=20)
    assert len(rows) == 20 and rows[-1]["id"] == "20"
    assert source.bytes_read <= 64 * 1024


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-5", "'-5"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\x00x", "'\x00x"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_for_export(value, expected):
    assert neutralise_for_export(value) == expected


def test_one_repeated_value_among_thousands_rules_out_a_key(corpus_dir):
    ids = list(range(1, 30_001))
    ids[-1] = 17  # a single repeat: the distinct ratio still rounds to 1.0
    text = "id,label\n" + "".join(f"{i},x{n}\n" for n, i in enumerate(ids))
    detection = detect_file(corpus.write(corpus_dir, "dup.csv", text))
    assert column(detection, "id").distinct_ratio == 1.0
    assert detection.candidate_primary_keys == ["label"]
    assert detection.suggested_primary_key is None


def test_impossible_calendar_dates_are_not_silently_rolled_over(corpus_dir):
    days = [f"2024-02-{d:02d}" for d in range(1, 29)] + ["2024-02-30"]
    text = "id,day\n" + "".join(f"{i},{d}\n" for i, d in enumerate(days))
    detection = detect_file(corpus.write(corpus_dir, "feb.csv", text))
    assert column(detection, "day").type == "string"
    assert any("are date, but not '2024-02-30'" in w for w in detection.warnings)


def test_naive_and_offset_timestamps_mixed_warn(corpus_dir):
    values = [f"2024-02-{d:02d} 10:00:00" for d in range(1, 29)] + ["2024-02-03T10:00:00Z"]
    text = "id,ts\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))
    detection = detect_file(corpus.write(corpus_dir, "mixed.csv", text))
    assert column(detection, "ts").type == "string"
    assert any("are timestamp, but not '2024-02-03T10:00:00Z'" in w for w in detection.warnings)

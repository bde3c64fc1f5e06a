"""Reading a CSV file of the landing area as a stream of typed Arrow record batches.

This module owns two things:

- :func:`resolve_landing_path` turns ``fileConfig.filePath`` (relative to the landing area)
  into a real file inside it, and refuses anything that could read outside it.
- :func:`read_csv_batches` returns a :class:`CsvBatches`: its ``schema`` is known before the
  first batch (a streamed Delta write needs it up front), iterating it yields
  ``pyarrow.RecordBatch`` es of at most ``batch_rows`` rows, and memory stays bounded by a few
  blocks whatever the file size (5,000,000 rows through the bronze writer: ~600 MB peak RSS).

How a file is read, and why
---------------------------
- pyarrow's streaming CSV reader with ``use_threads=False``: only then does its invalid-row
  handler know the row number, and for our all-bytes read it measured no slower (2,000,000
  rows: 0.4 s either way). The parallelism comes from pipelining instead: a helper thread
  parses blocks while this one converts them and the bronze writer encodes Parquet; it
  starts at once, so the first rows' types are inferred while it parses the first batch.
- Every column is read as bytes and converted per batch by us (``pyarrow.compute.cast``):
  a value that does not fit the column's type then becomes a malformed row naming the row and
  the column, instead of an Arrow error that ends the stream. Text that is not valid in the
  file's encoding is caught the same way. Conversion costs ~0.3 s per 2,000,000 x 10 values.
- Types come from ``columns[].type`` when given, else are inferred from the first blocks
  (at least ``batch_rows`` rows, or the whole file when shorter) by schema detection's own
  inference (``flowforge_rules.csv.inference``), so a job naming a ``filePath``
  types a file as a job naming its upload's ``fileId`` does: integer; decimal for
  fixed-point text (``10.50``) and for integers wider than int64 (a 20-digit account
  number is ``decimal(20,0)``, never a float); float only for exponents, NaN/inf or more
  decimals than a decimal holds; boolean; date and timestamp (ISO, or d/m/Y and the other
  detected formats, parsed strictly); else string. Codes with leading zeros (``007``) stay
  strings. A later value that breaks the inferred type is a malformed row.
- Empty values and null: an empty *unquoted* field is null in every column. A quoted empty
  field (``""``) is an empty string in a string column (as csv-spectrum, Python's csv module
  and pyarrow read it) and null in any other column (a number or a date has no empty
  value). The ``nullValues`` the user lists are null, quoted or not.

Source rows
-----------
Each batch carries ``_source_row`` (int64): the 1-based number of the record among the data
records of the file. The header is not counted, blank lines are not counted, and a quoted
value spanning several lines still makes one record. For the usual file (header, no blank
lines, no multi-line values) the source row is the line number minus one. The lines
``fileConfig.skipRows`` skips and the comment lines (``fileConfig.commentChar``) are not
counted either: they are left out of the prepared copy pyarrow reads (:mod:`.csv_prepare`). Malformed records
keep their number, so the numbers of loaded rows have gaps where rows were quarantined.

Malformed rows
--------------
``malformedRows: fail`` raises :class:`MalformedRowError` at the first bad row of the file,
naming it as "row N after the header". ``quarantine`` records a :class:`QuarantinedRow` and
goes on; read ``CsvBatches.quarantined`` after the iteration. ``raw_line`` is the row's text
as the file has it for field-count errors; for conversion errors it is the row re-serialised
from its parsed fields (quotes re-applied where needed; a null value is written empty).

Besides those, :mod:`flowforge_shared.csv_rules` makes two kinds of record malformed, as
detection and preview do: values adding up to more than ``MAX_RECORD_BYTES`` (1 MiB), and a
quoted value still open at the end of the file or after 1 MiB. pyarrow reads the second as
one value holding the rest of the file, so its rows say nothing about what follows: the file
is read in segments, a new pyarrow reader starting at the line after the one where such a
record began (found by :mod:`flowforge_ingest.csv_resync`); its ``raw_line`` is that first
line. Rows keep their numbers across segments.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flowforge_ingest import csv_resync
from flowforge_ingest.bronze import SOURCE_ROW_COLUMN, Prefetch
from flowforge_ingest.csv_prepare import SkipBeyondEnd, prepared_copy
from flowforge_ingest.errors import CsvFormatError, LandingPathError, MalformedRowError
from flowforge_shared.contracts.jobs import ColumnOverride, FileConfig
from flowforge_shared.contracts.landing import landing_path_problem, shown
from flowforge_shared.csv_rules import (
    MAX_RECORD_BYTES,
    OPEN_AT_END,
    ROW_NAME_EVIDENCE,
    ends_inside_quotes,
    strict_strptime,
    too_long_reason,
    unique_names,
    untitled_row_names,
)

DEFAULT_DECIMAL_PRECISION = 38
DEFAULT_DECIMAL_SCALE = 9

# pyarrow parses block by block. 1 MiB blocks measured fastest and leanest (2,000,000 rows:
# 0.39 s and 145 MB RSS, against 0.45 s and 360 MB with 10 MiB blocks); we merge the
# converted blocks into batches of ``batch_rows``. A record must fit in one block.
_BLOCK_SIZE = 1 << 20
_PROBE_BLOCKS = (64 << 10, _BLOCK_SIZE)
_PARSE_AHEAD = 8  # blocks: the first ones parse while the first rows' types are inferred
_INFERENCE_ROWS = 10_000  # rows whose values an undeclared column's type is inferred from
_MAX_VALUE_IN_MESSAGE = 80
_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
_CAST_PREFIX = 64
_EMPTY_ONLY = pa.array([b""], pa.binary())

_OVERRIDE_TYPES: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "string": pa.string(),
}


@dataclass(frozen=True)
class QuarantinedRow:
    """A row set aside under ``malformedRows: quarantine``."""

    source_row: int | None
    raw_line: str
    reason: str


# --------------------------------------------------------------------------- landing paths


def resolve_landing_path(landing_root: Path, file_path: str) -> Path:
    """The file ``file_path`` names inside ``landing_root``, fully resolved.

    Refused with :class:`LandingPathError`: what the job contract's rule refuses
    (:func:`~flowforge_shared.contracts.landing.landing_path_problem`: NUL and control
    characters, absolute paths, backslashes, ``..`` components, ...), and what only the file
    system can tell: symlinks whose target is outside the landing area, and anything that is
    not an existing regular file.
    """
    problem = landing_path_problem(file_path)  # the job contract's rule, checked again
    if problem is not None:
        raise LandingPathError(f"fileConfig.filePath {shown(file_path)} {problem}")
    try:
        root = landing_root.resolve(strict=True)
    except OSError as error:
        raise LandingPathError(f"the landing area {landing_root} is not available") from error
    try:
        # strict=True follows every symlink to its final target, so the containment
        # check below sees where the bytes really come from.
        resolved = (root / file_path).resolve(strict=True)
    except FileNotFoundError as error:
        raise LandingPathError(
            f"file {shown(file_path)} was not found in the landing area: upload it first or fix "
            "fileConfig.filePath"
        ) from error
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise LandingPathError(f"file {shown(file_path)} cannot be opened: {error}") from error
    if not resolved.is_relative_to(root):
        raise LandingPathError(
            f"file {shown(file_path)} is a link to a place outside the landing area, which is not allowed"
        )
    if not stat.S_ISREG(os.stat(resolved).st_mode):
        raise LandingPathError(f"{shown(file_path)} is not a regular file in the landing area")
    return resolved


# --------------------------------------------------------------------------- column plans


@dataclass(frozen=True)
class _Column:
    """How one column of the file is converted: its output name, type and converter."""

    source_name: str
    name: str
    type: pa.DataType
    convert: Callable[[pa.Array], pa.Array]
    declared: bool  # True when columns[].type fixed the type, False when inferred
    format: str | None = None  # the strptime format of a date or timestamp column


def _cast_to(target: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    if target == pa.string():
        return lambda values: pc.cast(values, pa.string())  # validates the UTF-8

    def convert(values: pa.Array) -> pa.Array:
        # Parsing a number, date or boolean refuses any non-ASCII byte by itself, so the
        # bytes are viewed as text without the UTF-8 check (a tenth of the read's time).
        return pc.cast(values.view(pa.string()), target)

    return convert


_ZONE = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
_ISO_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}%s[0-9]{2}:[0-9]{2}:[0-9]{2}%s$"
# Formats of ISO timestamps whose values, when they have exactly this shape, Arrow's ISO 8601
# cast reads as the strict parse does (it refuses the impossible ones too, and a few offsets
# the strict parse takes, such as +24:00: those go to the strict parse).
_ISO_TIMESTAMP_SHAPES: dict[str, tuple[str, pa.DataType]] = {
    "%Y-%m-%d %H:%M:%S": (_ISO_TIME % (" ", ""), pa.timestamp("us")),
    "%Y-%m-%dT%H:%M:%S": (_ISO_TIME % ("T", ""), pa.timestamp("us")),
    "%Y-%m-%d %H:%M:%S%z": (_ISO_TIME % (" ", _ZONE), pa.timestamp("us", "UTC")),
    "%Y-%m-%dT%H:%M:%S%z": (_ISO_TIME % ("T", _ZONE), pa.timestamp("us", "UTC")),
}


def _parse_with_format(target: pa.DataType, fmt: str) -> Callable[[pa.Array], pa.Array]:
    def convert(values: pa.Array) -> pa.Array:
        # Strict: an impossible value (31/02, 24:00, 23:59:60, a two-digit %Y year) is a
        # malformed row, never rolled over to another day.
        text = pc.cast(values, pa.string())
        if fmt == "%Y-%m-%d":
            try:  # ISO dates: Arrow's cast is strict already, and much faster
                return pc.cast(pc.cast(text, pa.date32()), target)
            except _CONVERSION_ERRORS:
                pass  # unpadded (2024-1-5) or impossible: the strict parse decides
        iso = _ISO_TIMESTAMP_SHAPES.get(fmt)
        if iso is not None and pc.all(pc.match_substring_regex(text, iso[0])).as_py():
            try:  # ISO timestamps of exactly the format's shape: the same, 3x faster
                return pc.cast(pc.cast(text, iso[1]), target)
            except _CONVERSION_ERRORS:
                pass  # impossible (24:00, 30/02) or an odd offset: the strict parse decides
        parsed = strict_strptime(text, fmt, unit="us")
        return pc.cast(parsed, target)

    return convert


def _has_number_format(override: ColumnOverride) -> bool:
    return bool(
        override.decimal_separator or override.thousands_separator or override.currency_symbol
    )


def _parse_number(
    source_name: str, target: pa.DataType, override: ColumnOverride
) -> Callable[[pa.Array], pa.Array]:
    """Numbers written the local way: the currency symbol and thousands separators go, a
    decimal comma becomes a point, then the usual cast (which refuses anything left over)."""
    if not (
        pa.types.is_integer(target) or pa.types.is_decimal(target) or pa.types.is_floating(target)
    ):
        raise CsvFormatError(
            f"column {source_name!r}: decimalSeparator, thousandsSeparator and currencySymbol "
            f"apply to integer, decimal and float columns, not {override.type or 'untyped'} ones"
        )
    if override.decimal_separator and override.decimal_separator == override.thousands_separator:
        raise CsvFormatError(
            f"column {source_name!r}: the decimal and thousands separators must differ"
        )

    def convert(values: pa.Array) -> pa.Array:
        text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
        if override.currency_symbol:
            text = pc.utf8_trim_whitespace(pc.replace_substring(text, override.currency_symbol, ""))
        if override.thousands_separator:
            text = pc.replace_substring(text, override.thousands_separator, "")
        if override.decimal_separator == ",":
            text = pc.replace_substring(text, ",", ".")
        return pc.cast(text, target)

    return convert


def _parse_boolean(
    source_name: str, target: pa.DataType, override: ColumnOverride
) -> Callable[[pa.Array], pa.Array]:
    """Booleans spelled the file's way (``trueValues`` / ``falseValues``, any case)."""
    if target != pa.bool_():
        raise CsvFormatError(
            f"column {source_name!r}: trueValues and falseValues apply to boolean columns"
        )
    true_set = pa.array(sorted({v.strip().lower() for v in override.true_values or []}))
    false_set = pa.array(sorted({v.strip().lower() for v in override.false_values or []}))

    def convert(values: pa.Array) -> pa.Array:
        text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(values, pa.string())))
        is_true = pc.is_in(text, value_set=true_set)
        is_false = pc.is_in(text, value_set=false_set)
        unknown = pc.and_(pc.is_valid(text), pc.invert(pc.or_(is_true, is_false)))
        if pc.any(unknown).as_py():
            raise pa.ArrowInvalid(f"a value of {source_name!r} is neither a true nor a false value")
        return pc.if_else(pc.is_valid(text), is_true, pa.nulls(len(text), pa.bool_()))

    return convert


def _declared_type(override: ColumnOverride) -> pa.DataType | None:
    if override.type in _OVERRIDE_TYPES:
        return _OVERRIDE_TYPES[override.type]
    if override.type == "decimal":
        precision = override.precision or DEFAULT_DECIMAL_PRECISION
        scale = override.scale if override.scale is not None else DEFAULT_DECIMAL_SCALE
        if scale > precision:
            raise CsvFormatError(
                f"column {override.name!r}: decimal scale {scale} is larger than its "
                f"precision {precision}"
            )
        return pa.decimal128(precision, scale)
    return None  # "timestamp" (naive or UTC is decided from the values) or no type


def _with_nulls(
    convert: Callable[[pa.Array], pa.Array], tokens: pa.Array, *, refuses_empty: bool = False
) -> Callable[[pa.Array], pa.Array]:
    """``convert`` after the values in ``tokens`` (binary) became null. ``refuses_empty``:
    ``convert`` refuses ``""`` (a cast to a number, date, time or boolean does)."""

    if tokens.equals(_EMPTY_ONLY):
        # Only "" (a quoted empty value of a typed column): its length says it, no hashing.
        def is_token(values: pa.Array) -> pa.Array:
            return pc.equal(pc.binary_length(values), 0)
    else:

        def is_token(values: pa.Array) -> pa.Array:
            return pc.is_in(values, value_set=tokens)

    def with_nulls(values: pa.Array) -> pa.Array:
        is_null = is_token(values)
        if pc.any(is_null).as_py():
            values = pc.if_else(is_null, pa.nulls(len(values), values.type), values)
        return convert(values)

    if refuses_empty and tokens.equals(_EMPTY_ONLY):
        # A batch the conversion takes holds no "": nothing to make null, and the search
        # for "" (~10 ms per 500,000 x 8 values) is made only when the conversion refuses.
        def converted_or_with_nulls(values: pa.Array) -> pa.Array:
            try:
                return convert(values)
            except _CONVERSION_ERRORS:
                return with_nulls(values)

        return converted_or_with_nulls
    return with_nulls


def _has_parse_options(override: ColumnOverride) -> bool:
    return bool(
        override.format
        or _has_number_format(override)
        or override.true_values
        or override.false_values
    )


def _inferred_override(name: str, strings: pa.Array, delimiter: str) -> ColumnOverride:
    """How detection would type a column holding ``strings`` (nulls already applied):
    detection's own inference (``flowforge_rules.csv.inference``) on the distinct values
    and the fileConfig column it suggests for it. Fixed-point text is a decimal, an integer
    wider than int64 a decimal of scale 0, codes with leading zeros stay text; float only for
    exponents, NaN/inf or more decimals than a decimal holds."""
    from collections import Counter

    from flowforge_rules.csv.columns import DetectedColumn
    from flowforge_rules.csv.inference import infer_type
    from flowforge_rules.csv.overrides import column_override

    counted = pc.value_counts(pc.drop_null(strings))
    values = Counter(
        dict(
            zip(
                counted.field("values").to_pylist(),
                counted.field("counts").to_pylist(),
                strict=True,
            )
        )
    )
    guess = infer_type(values, name=name, delimiter=delimiter)
    column = DetectedColumn(
        name="column",  # the override names it below, whatever its length
        type=guess.type,
        precision=guess.precision,
        scale=guess.scale,
        format=guess.format,
        ambiguous=guess.ambiguous,
        format_candidates=list(guess.format_candidates),
        number_format=guess.number_format,
        examples=list(values)[:16] if guess.type == "boolean" else [],
    )
    override, _ = column_override(column)
    assert override is not None
    return override.model_copy(update={"name": name})


def _joined(blocks: list[pa.RecordBatch]) -> pa.RecordBatch | None:
    return (pa.concat_batches(blocks) if len(blocks) > 1 else blocks[0]) if blocks else None


def _infer_sample(
    source_names: list[str], sample: pa.RecordBatch | None, file_config: FileConfig
) -> dict[int, tuple[pa.Array, ColumnOverride]]:
    """The inference :func:`_plan_columns` makes for each column with no declared type,
    made ahead on ``sample``: the first blocks, holding at least the _INFERENCE_ROWS rows
    inference reads (or the whole first batch). By position: (the values as text, the
    inferred column). A column whose declaration is at fault is left to _plan_columns,
    which reports it in its turn."""
    if sample is None or not sample.num_rows:
        return {}
    overrides = _overrides_by_name(source_names, file_config.columns or [])
    tokens = [token.encode("utf-8") for token in file_config.null_values or [] if token]
    typed_nulls = pa.array([b"", *tokens], pa.binary())
    inferred: dict[int, tuple[pa.Array, ColumnOverride]] = {}
    for index, source_name in enumerate(source_names):
        override = overrides.get(source_name)
        if override is not None and (override.type or override.format):
            continue  # declared (or refused): _plan_columns decides
        text = _HeadText(sample.column(index), typed_nulls).sample()
        if text is not None:
            guess = _inferred_override(source_name, text, file_config.delimiter)
            inferred[index] = (text, guess)
    return inferred


def _plan_columns(
    source_names: list[str],
    first: pa.RecordBatch | None,
    file_config: FileConfig,
    inferred_ahead: dict[int, tuple[pa.Array, ColumnOverride]] | None = None,
) -> tuple[list[_Column], dict[int, pa.Array]]:
    """How each column is converted, and the first block's columns already converted while
    the inferred types were checked on it (by position; the reader uses them instead of
    converting those values again). ``inferred_ahead``: what :func:`_infer_sample` inferred
    from the first rows, used instead of inferring again."""
    inferred_ahead = inferred_ahead or {}
    overrides = _overrides_by_name(source_names, file_config.columns or [])
    # The reader leaves quoted values alone (quoted_strings_can_be_null=False): the null
    # tokens are applied here, to quoted values too, and a quoted "" is null in every column
    # but a string one.
    tokens = [token.encode("utf-8") for token in file_config.null_values or [] if token]
    string_nulls = pa.array(tokens, pa.binary())
    typed_nulls = pa.array([b"", *tokens], pa.binary())
    columns: list[_Column] = []
    checked: dict[int, pa.Array] = {}
    for index, source_name in enumerate(source_names):
        override = overrides.get(source_name)
        # The first block's values as text (None when they are not valid text: a string
        # column then, whose rows at fault the batch conversion reports with their numbers).
        # Inference reads only the first _INFERENCE_ROWS: the whole block is made text only
        # when it is needed.
        head = _HeadText(first.column(index) if first is not None else None, typed_nulls)
        name = override.rename if override and override.rename else source_name
        declared = _declared_type(override) if override else None
        if override and override.format and override.type not in ("date", "timestamp"):
            raise CsvFormatError(
                f"column {source_name!r}: a format applies to date and timestamp columns, "
                f"not to {override.type or 'an untyped'} column"
            )
        if override and override.type == "timestamp":
            declared = _timestamp_type(head.whole(), override.format)
        ahead = inferred_ahead.get(index) if declared is None else None
        if ahead is not None:
            sample = ahead[0]
        elif declared is None and first is not None and first.num_rows:
            sample = head.sample()
        else:
            sample = None
        inferred_target: pa.DataType | None = None
        if declared is None and sample is not None:
            # No declared type: the type schema detection gives an upload (one inference
            # for a job naming a fileId and one naming a filePath), with its parse options.
            # Inferred from the first rows' values, then checked on the whole first block
            # (inference costs per distinct value; a check is one vectorised conversion).
            if ahead is not None:
                inferred = ahead[1]
            else:
                inferred = _inferred_override(source_name, sample, file_config.delimiter)
            given = override if override is not None and _has_parse_options(override) else None
            inferred_target = _inferred_target(inferred, sample)
            if head.rows > len(sample):
                check = _converter(
                    source_name, inferred_target, given or inferred, string_nulls, typed_nulls
                )
                try:
                    checked[index] = check(head.values)
                except _CONVERSION_ERRORS:
                    # A later value breaks the type: inferred again from the whole block,
                    # unless the block is not valid text (then a string column).
                    strings = head.whole()
                    if strings is None:
                        inferred_target = None
                    else:
                        inferred = _inferred_override(source_name, strings, file_config.delimiter)
                        inferred_target = _inferred_target(inferred, strings)
            if inferred_target is not None:
                override = given or inferred
        if declared is not None:
            target, is_declared = declared, True
        elif inferred_target is not None:
            target, is_declared = inferred_target, False
        else:
            target, is_declared = pa.string(), False
        convert = _converter(source_name, target, override, string_nulls, typed_nulls)
        fmt = override.format if override and override.format else None
        columns.append(_Column(source_name, name, target, convert, is_declared, fmt))
    _check_output_names(columns)
    return columns, checked


class _HeadText:
    """One column of the first block as text, with the null tokens applied: its first
    _INFERENCE_ROWS values (what inference reads) and, only when asked, all of them. None
    when the values are not valid text."""

    def __init__(self, values: pa.Array | None, typed_nulls: pa.Array) -> None:
        self.values = values
        self.rows = len(values) if values is not None else 0
        self._typed_nulls = typed_nulls
        self._whole: pa.Array | None = None
        self._whole_done = False

    def _text(self, values: pa.Array) -> pa.Array | None:
        try:
            return pc.cast(_with_nulls(lambda v: v, self._typed_nulls)(values), pa.string())
        except _CONVERSION_ERRORS:
            return None

    def whole(self) -> pa.Array | None:
        if self.values is None:
            return None
        if not self._whole_done:
            self._whole, self._whole_done = self._text(self.values), True
        return self._whole

    def sample(self) -> pa.Array | None:
        if self.values is None:
            return None
        if self.rows <= _INFERENCE_ROWS:
            return self.whole()
        if self._whole_done:
            return self._whole.slice(0, _INFERENCE_ROWS) if self._whole is not None else None
        sample = self._text(self.values.slice(0, _INFERENCE_ROWS))
        if sample is None:  # the whole block is not valid text either
            self._whole, self._whole_done = None, True
        return sample


def _inferred_target(inferred: ColumnOverride, strings: pa.Array) -> pa.DataType:
    if inferred.type == "timestamp":
        return _timestamp_type(strings, inferred.format)
    return _declared_type(inferred) or pa.string()


def _converter(
    source_name: str,
    target: pa.DataType,
    override: ColumnOverride | None,
    string_nulls: pa.Array,
    typed_nulls: pa.Array,
) -> Callable[[pa.Array], pa.Array]:
    if override and override.format:
        convert = _parse_with_format(target, override.format)
    elif override and _has_number_format(override):
        convert = _parse_number(source_name, target, override)
    elif override and (override.true_values or override.false_values):
        convert = _parse_boolean(source_name, target, override)
    else:
        convert = _cast_to(target)
    nulls = string_nulls if target == pa.string() else typed_nulls
    if len(nulls):
        # A plain cast to a type other than text refuses "" (a parse with a format, a
        # number format or true/false spellings is left as it was).
        plain = not (override and _has_parse_options(override))
        convert = _with_nulls(convert, nulls, refuses_empty=plain and target != pa.string())
    return convert


def _timestamp_type(strings: pa.Array | None, fmt: str | None) -> pa.DataType:
    if fmt is not None:
        return pa.timestamp("us", "UTC") if "%z" in fmt or "%Z" in fmt else pa.timestamp("us")
    if strings is not None and strings.null_count < len(strings):
        for candidate in (pa.timestamp("us"), pa.timestamp("us", "UTC")):
            try:
                # A refused cast costs ~1.3 us a value (Arrow words an error for each one it
                # refuses): the first values first, where an offset (or its absence) shows.
                pc.cast(strings.slice(0, _CAST_PREFIX), candidate)
                pc.cast(strings, candidate)
            except _CONVERSION_ERRORS:
                continue
            return candidate
    return pa.timestamp("us")


def _overrides_by_name(
    source_names: list[str], overrides: list[ColumnOverride]
) -> dict[str, ColumnOverride]:
    by_name: dict[str, ColumnOverride] = {}
    for index, override in enumerate(overrides):
        if override.name not in source_names:
            known = ", ".join(repr(n) for n in source_names[:20])
            more = " …" if len(source_names) > 20 else ""
            raise CsvFormatError(
                f"fileConfig.columns[{index}] names column {override.name!r}, which the file "
                f"does not have (its columns: {known}{more})"
            )
        if override.name in by_name:
            raise CsvFormatError(
                f"fileConfig.columns lists column {override.name!r} twice: merge the entries"
            )
        by_name[override.name] = override
    return by_name


def _check_output_names(columns: list[_Column]) -> None:
    seen: dict[str, str] = {}
    for column in columns:
        if column.name == SOURCE_ROW_COLUMN:
            raise CsvFormatError(
                f"column {column.source_name!r} would be named {SOURCE_ROW_COLUMN}, a name "
                "FlowForge reserves: rename it with fileConfig.columns"
            )
        if column.name in seen:
            raise CsvFormatError(
                f"columns {seen[column.name]!r} and {column.source_name!r} would both be "
                f"named {column.name!r}: rename one with fileConfig.columns"
            )
        seen[column.name] = column.source_name


# --------------------------------------------------------------------------- reader options


def _arrow_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError as error:
        raise CsvFormatError(
            f"fileConfig.encoding {encoding!r} is not a known encoding: use utf-8, "
            "utf-8-sig, cp1252, latin-1 or utf-16, for example"
        ) from error
    # pyarrow reads UTF-8 natively and skips a byte-order mark; every other encoding goes
    # through its streaming transcoder (Python codecs, block by block).
    return "utf8" if name in ("utf-8", "utf-8-sig") else name


def _parse_options(file_config: FileConfig, handler) -> pacsv.ParseOptions:
    delimiter = file_config.delimiter
    quote = file_config.quote_char or None
    escape = file_config.escape_char or None
    if delimiter in ("\n", "\r"):
        raise CsvFormatError("fileConfig.delimiter cannot be a line break")
    if quote is not None and quote == delimiter:
        raise CsvFormatError("fileConfig.quoteChar and fileConfig.delimiter must differ")
    if escape is not None and escape in (delimiter, quote):
        raise CsvFormatError(
            "fileConfig.escapeChar must differ from the delimiter and the quote character"
        )
    return pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char=quote if quote is not None else False,
        escape_char=escape if escape is not None else False,
        double_quote=True,
        # Only a quoted (or escaped) value can hold a line break; without quoting the
        # faster line-based chunking is exact.
        newlines_in_values=quote is not None or escape is not None,
        invalid_row_handler=handler,
    )


def _check_comment_char(file_config: FileConfig) -> None:
    comment = file_config.comment_char
    if comment is None:
        return
    if comment in ("\n", "\r"):
        raise CsvFormatError("fileConfig.commentChar cannot be a line break")
    if comment in (file_config.delimiter, file_config.quote_char, file_config.escape_char):
        raise CsvFormatError(
            "fileConfig.commentChar must differ from the delimiter, the quote character and "
            "the escape character"
        )


def _null_values(file_config: FileConfig) -> list[str]:
    return list(dict.fromkeys(["", *(file_config.null_values or [])]))


def _format_error(source: str, encoding: str, error: Exception) -> CsvFormatError:
    if isinstance(error, UnicodeDecodeError):
        return CsvFormatError(
            f"file {source!r} cannot be read as {encoding}: {error.reason}. "
            "Check fileConfig.encoding (for Windows exports try cp1252 or latin-1)"
        )
    text = str(error)
    if "Empty CSV file" in text:
        return CsvFormatError(f"file {source!r} is empty")
    if "straddling" in text:
        return CsvFormatError(
            f"file {source!r} has a row longer than {_BLOCK_SIZE >> 20} MB, or an opening "
            "quote that is never closed: check fileConfig.quoteChar"
        )
    return CsvFormatError(f"file {source!r} cannot be read as CSV: {text}")


# --------------------------------------------------------------------------- the reader


@dataclass(frozen=True)
class _BadRecord:
    """A record pyarrow cannot hand over as a row: the wrong number of fields, a quote that
    never closes, or longer than ``MAX_RECORD_BYTES``."""

    source_row: int | None
    text: str
    reason: str


class _TooLong(Exception):
    """pyarrow met a record longer than two blocks (its "straddling" error)."""


class CsvBatches:
    """A CSV file as a one-pass stream of RecordBatches with a known schema.

    Build it with :func:`read_csv_batches`. ``schema`` is the output schema (renamed and
    typed columns, then ``_source_row``). After the iteration, ``quarantined`` lists the
    rows set aside (in source-row order) and ``rows_read`` counts the rows yielded.
    """

    def __init__(
        self,
        path: Path,
        file_config: FileConfig,
        *,
        batch_rows: int,
        source_name: str,
        max_quarantined: int,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        self.source_name = source_name
        self.quarantined_limit = max_quarantined
        self.rows_read = 0
        self._config = file_config
        self._batch_rows = batch_rows
        self._quarantine = file_config.malformed_rows == "quarantine"
        self._header_offset = 1 if file_config.has_header else 0
        self._encoding = _arrow_encoding(file_config.encoding)
        # Lines before the table, comment lines, and with the delimiter " " runs of spaces
        # (one separator): pyarrow reads a prepared copy (deleted when the reading ends, see
        # _release).
        self._copy: Path | None = None
        _check_comment_char(file_config)
        if file_config.delimiter == " " or file_config.skip_rows or file_config.comment_char:
            try:
                self._copy = prepared_copy(
                    path,
                    encoding=file_config.encoding,
                    delimiter=file_config.delimiter,
                    quote=file_config.quote_char or None,
                    escape=file_config.escape_char or None,
                    skip_rows=file_config.skip_rows,
                    comment=file_config.comment_char,
                )
            except UnicodeDecodeError as error:
                raise _format_error(source_name, file_config.encoding, error) from error
            except SkipBeyondEnd as error:
                raise CsvFormatError(
                    f"file {source_name!r} has {error.lines} lines, and fileConfig.skipRows "
                    f"skips {file_config.skip_rows}: nothing is left to read. Lower skipRows"
                ) from error
        self._path = self._copy or path
        self._quarantined: list[QuarantinedRow] = []
        self._ragged: list[_BadRecord] = []
        self._pending_ragged_rows: deque[int] = deque()
        self._next_row = 1
        self._row_numbers = pa.array([], pa.int64())
        # The file is read in segments: one, unless a malformed record made the reader lose
        # its place (see _segment_blocks); then a new pyarrow reader starts after it.
        self._size = os.stat(self._path).st_size
        self._resync = csv_resync.Dialect(
            file_config.delimiter,
            file_config.quote_char or None,
            file_config.escape_char or None,
            codecs.lookup(file_config.encoding).name if self._encoding != "utf8" else "utf-8",
        )
        self._segment_offset = 0
        self._segment_base = 0  # records of the file before the segment
        self._segment_records = 0  # records of the segment read so far (rows and bad records)
        # Numbers of the ragged records pyarrow skipped since the last block it returned.
        self._block_bad: list[int] = []
        self._resume_after = 0  # the malformed record a new segment starts after
        self._last_ragged: tuple[int, str] | None = None

        self._iterator: Iterator[pa.RecordBatch] | None = None

        self._reader: pacsv.CSVStreamingReader | None = None
        self._ahead: Prefetch[pa.RecordBatch] | None = None
        try:
            source_names = self._probe()
            self._width = len(source_names)
            self._blocks = self._segment_blocks()
            # The blocks are parsed on a helper thread from the start, a few ahead of their
            # use: the first rows' types are inferred while it parses the rest of the first
            # batch, and it goes on while the columns are planned and the writer opens its
            # table.
            self._ahead = Prefetch(self._blocks, _PARSE_AHEAD).start()
            # The first batch's first rows (a prefix of it: it ends at batch_rows rows).
            head = self._read_head(min(_INFERENCE_ROWS, self._batch_rows), [])
            inferred = _infer_sample(source_names, _joined(head), file_config)
            head = self._read_head(self._batch_rows, head)
            # The first blocks as one batch: the types are checked on it, and it is the
            # first batch converted, with the columns the type check converted already.
            self._first = _joined(head)
            self._columns, self._first_converted = _plan_columns(
                source_names, self._first, file_config, inferred
            )
        except BaseException:
            self._stop_parsing()
            self._release()
            raise
        self.schema = pa.schema(
            [pa.field(c.name, c.type) for c in self._columns]
            + [pa.field(SOURCE_ROW_COLUMN, pa.int64())]
        )

    @property
    def quarantined(self) -> list[QuarantinedRow]:
        return sorted(self._quarantined, key=lambda row: row.source_row or 0)

    # -- opening

    def _probe(self) -> list[str]:
        """The file's column names (or, without a header, column_1..N)."""
        config = self._config
        for block_size in _PROBE_BLOCKS:
            try:
                reader = pacsv.open_csv(
                    self._path,
                    read_options=pacsv.ReadOptions(
                        use_threads=False,
                        block_size=block_size,
                        encoding=self._encoding,
                        autogenerate_column_names=not config.has_header,
                    ),
                    parse_options=_parse_options(config, lambda row: "skip"),
                )
            except pa.ArrowInvalid as error:
                if "straddling" in str(error) and block_size != _PROBE_BLOCKS[-1]:
                    continue  # the first rows are long: look at a bigger block
                if "straddling" in str(error):
                    # A first data row too long for pyarrow (a malformed row, found when the
                    # rows are read): the header alone is read with the csv module.
                    header = csv_resync.first_record(self._path, self._resync)
                    if header is not None:
                        names = header
                        break
                raise _format_error(self.source_name, config.encoding, error) from error
            except (pa.ArrowException, UnicodeError, OSError) as error:
                raise _format_error(self.source_name, config.encoding, error) from error
            names = list(reader.schema.names)
            reader.close()
            break
        if config.has_header:
            # R's titles over row names: the header is one field short of the rows.
            records = csv_resync.first_records(self._path, self._resync, 1 + ROW_NAME_EVIDENCE)
            if records and untitled_row_names(names, records[1:]):
                names = ["", *names]
            return self._header_names(names)
        return [f"column_{index}" for index in range(1, len(names) + 1)]

    def _header_names(self, names: list[str]) -> list[str]:
        # An unnamed header cell (pandas writes one for its index) gets a position name, and
        # a repeated name gets a suffix (name, name_2), as detection and preview name them:
        # a table cannot hold two columns of one name, and refusing the file would leave
        # the user nothing to load.
        return unique_names(
            [name if name.strip() else f"column_{index}" for index, name in enumerate(names, 1)]
        )

    def _open(self, width: int, offset: int = 0) -> pacsv.CSVStreamingReader:
        # Internal names c0..cN keep duplicate or odd header names out of pyarrow's way; the
        # header row itself is skipped as a parsed row (it may be quoted across lines).
        # A later segment starts at ``offset``, after the header and a malformed record.
        internal = [f"c{index}" for index in range(width)]
        source: str | Path | pa.NativeFile = self._path
        if offset:
            source = pa.OSFile(str(self._path))
            source.seek(offset)
        try:
            return pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(
                    use_threads=False,
                    block_size=_BLOCK_SIZE,
                    encoding=self._encoding,
                    column_names=internal,
                    skip_rows_after_names=0 if offset else self._header_offset,
                ),
                parse_options=_parse_options(self._config, self._on_invalid_row),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.binary() for name in internal},
                    null_values=_null_values(self._config),
                    strings_can_be_null=True,
                    # "" stays an empty string; the listed null values are applied to
                    # quoted values by the column's converter (_with_nulls).
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as error:
            if "straddling" in str(error):  # the segment's first record is too long
                raise _TooLong from error
            raise _format_error(self.source_name, self._config.encoding, error) from error
        except (pa.ArrowException, UnicodeError, OSError) as error:
            raise _format_error(self.source_name, self._config.encoding, error) from error

    def _read_head(self, rows: int, head: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
        """``head`` and the next blocks, up to at least ``rows`` rows in all (or the end):
        the first batch, whose types are read from its first rows and checked on all."""
        assert self._ahead is not None
        count = sum(block.num_rows for block in head)
        while count < rows:
            block = next(self._ahead, None)
            if block is None:
                break
            head.append(block)
            count += block.num_rows
        return head

    def _segment_blocks(self) -> Iterator[pa.RecordBatch]:
        """The file's raw blocks, with the records that break :mod:`flowforge_shared.csv_rules`
        taken out as malformed records.

        pyarrow reads a quote that never closes to the end of the file as one value, and
        fails a whole read on a record longer than two blocks. Both are records pyarrow has
        read wrongly, so their rows are no guide to what follows: reading starts again (a
        new segment) at the line after the one where such a record began. A long record
        whose quotes are balanced (a big value) is only set aside. The last block of each
        segment is held back until the next read says whether it is the last of the file.
        """
        while True:
            held: pa.RecordBatch | None = None
            resume: csv_resync.Place | None = None
            while True:
                try:
                    if self._reader is None:
                        self._reader = self._open(self._width, self._segment_offset)
                    raw = self._read_raw()
                except _TooLong:
                    number = self._segment_base + self._segment_records + 1
                    resume = self._locate(number, quote=False)
                    break
                if raw is None:
                    if held is not None or self._last_ragged is not None:
                        held, resume = self._check_end(held)
                    break
                self._segment_records += raw.num_rows
                raw, resume = self._check_lengths(raw)
                self._block_bad = []
                if held is not None and held.num_rows:
                    yield held
                held = raw
                if resume is not None:
                    break
            if held is not None and held.num_rows:
                yield held
            if resume is None or resume.resume >= self._size:
                return
            if resume.resume <= self._segment_offset:  # never read the same part twice
                raise CsvFormatError(
                    f"file {self.source_name!r}: the reader cannot get past a malformed row "
                    f"near byte {resume.start}: check fileConfig.quoteChar and escapeChar"
                )
            self._close_reader()
            self._segment_offset = resume.resume
            self._segment_base = self._resume_after  # the malformed record's number
            self._segment_records = 0
            self._last_ragged = None

    def _check_lengths(self, raw: pa.RecordBatch) -> tuple[pa.RecordBatch, csv_resync.Place | None]:
        """``raw`` without its rows longer than ``MAX_RECORD_BYTES``; if one of them held a
        line break (a quote open across lines), the rows from it on, and where to resume."""
        data = sum(
            buffer.size for column in raw.columns if (buffer := column.buffers()[2]) is not None
        )
        if data <= MAX_RECORD_BYTES:  # the happy path: no row can be that long
            return raw, None
        lengths = pc.fill_null(pc.binary_length(raw.column(0)), 0)
        for column in raw.columns[1:]:
            lengths = pc.add(lengths, pc.fill_null(pc.binary_length(column), 0))
        long_rows = pc.indices_nonzero(pc.greater(lengths, MAX_RECORD_BYTES)).to_pylist()
        if not long_rows:
            return raw, None
        numbers = self._block_numbers(raw.num_rows)
        keep = [True] * raw.num_rows
        for position in long_rows:
            values = [column[position].as_py() for column in raw.columns]
            if any(value and (b"\n" in value or b"\r" in value) for value in values):
                # A quote open across lines swallowed them: the lines after its first one
                # are read again as rows.
                number = numbers[position]
                resume = self._locate(number, quote=True)
                if resume is None:  # cannot find it (UTF-16): set the row aside, go on
                    keep[position] = False
                    continue
                return raw.slice(0, position).filter(pa.array(keep[:position], pa.bool_())), resume
            keep[position] = False
            self._bad_record(numbers[position], self._row_text(values), too_long_reason(False))
        return raw.filter(pa.array(keep, pa.bool_())), None

    def _block_numbers(self, rows: int) -> list[int]:
        """Source rows of the rows of the block just read (its bad records skipped)."""
        count = rows + len(self._block_bad)
        first = self._segment_base + self._segment_records - count + 1
        bad = set(self._block_bad)
        return [number for number in range(first, first + count) if number not in bad]

    def _check_end(
        self, held: pa.RecordBatch | None
    ) -> tuple[pa.RecordBatch | None, csv_resync.Place | None]:
        """At the end of a segment: if the file ends inside a quote its last record opened,
        that record is malformed and reading resumes at the line after its first."""
        last = self._segment_base + self._segment_records
        if self._last_ragged is not None and self._last_ragged[0] == last:
            text = self._last_ragged[1]
            place = csv_resync.open_ragged_record(self._path, text, self._resync, size=self._size)
            if place is not None:
                self._retract(last - 1)
                self._bad_record(last, place.first_line, OPEN_AT_END)
                self._resume_after = last
            return held, place
        if held is None or not held.num_rows:
            return held, None
        values = [
            value.decode("utf-8", "replace") if (value := column[-1].as_py()) is not None else None
            for column in held.columns
        ]
        place = csv_resync.open_last_record(
            self._path, self._resync, values=values, size=self._size
        )
        if place is None:
            return held, None
        self._bad_record(last, place.first_line, OPEN_AT_END)
        self._resume_after = last
        return held.slice(0, held.num_rows - 1), place

    def _locate(self, number: int, *, quote: bool) -> csv_resync.Place | None:
        """Find record ``number`` of the segment (longer than ``MAX_RECORD_BYTES``; ``quote``:
        it holds a quoted line break), record it as malformed and forget what was read past
        it. None if it cannot be found: then a row pyarrow returned is only set aside by the
        caller, and a read pyarrow failed fails the file."""
        skip = number - self._segment_base - 1
        if self._segment_offset == 0:
            skip += self._header_offset
        place = csv_resync.find_record(
            self._path, self._resync, offset=self._segment_offset, skip=skip
        )
        if place is None:
            if quote:
                return None
            raise CsvFormatError(
                f"file {self.source_name!r}, {self._row(number)}: "
                f"{too_long_reason(True)}, and the reader cannot find where it begins in "
                f"{self._config.encoding} text. Fix the row (check fileConfig.quoteChar)"
            )
        self._retract(number)
        quote_open = ends_inside_quotes(
            place.first_line,
            delimiter=self._resync.delimiter,
            quote=self._resync.quote,
            escape=self._resync.escape,
        )
        self._bad_record(number, place.first_line, too_long_reason(quote_open or quote))
        self._resume_after = number
        return place

    def _retract(self, after: int) -> None:
        """Forget the bad records numbered above ``after``: they are read again."""
        if not any(bad.source_row is not None and bad.source_row > after for bad in self._ragged):
            return
        self._ragged = [b for b in self._ragged if b.source_row is None or b.source_row <= after]
        self._pending_ragged_rows = deque(n for n in self._pending_ragged_rows if n <= after)
        self._quarantined = [
            q for q in self._quarantined if q.source_row is None or q.source_row <= after
        ]

    def _row_text(self, values: list[bytes | None]) -> str:
        quote = self._config.quote_char or None
        delimiter = self._config.delimiter
        fields = []
        for value in values:
            text = value.decode("utf-8", errors="replace") if value is not None else ""
            if quote and any(ch in text for ch in (delimiter, quote, "\n", "\r")):
                text = quote + text.replace(quote, quote * 2) + quote
            fields.append(text)
        return delimiter.join(fields)

    def _read_raw(self) -> pa.RecordBatch | None:
        try:
            return self._reader.read_next_batch()
        except StopIteration:
            return None
        except pa.ArrowInvalid as error:
            if "straddling" in str(error):
                raise _TooLong from error
            raise _format_error(self.source_name, self._config.encoding, error) from error
        except (pa.ArrowException, UnicodeError, OSError) as error:
            raise _format_error(self.source_name, self._config.encoding, error) from error

    def _on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        # Called by pyarrow while it parses a block; never raise from here.
        number = None
        if row.number is not None:
            number = self._segment_base + row.number
            if self._segment_offset == 0:
                number -= self._header_offset
            self._last_ragged = (number, row.text)
            self._block_bad.append(number)
        self._segment_records += 1
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        self._bad_record(number, row.text, reason)
        return "skip"

    def _bad_record(self, number: int | None, text: str, reason: str) -> None:
        """Record a malformed record: its number is skipped by the rows, and it fails the
        load when it is reached, or is quarantined."""
        self._ragged.append(_BadRecord(number, text, reason))
        if number is not None:
            self._pending_ragged_rows.append(number)
        if self._quarantine:
            self._quarantined.append(
                QuarantinedRow(source_row=number, raw_line=text, reason=reason)
            )

    # -- iterating

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._iterator is not None:
            raise RuntimeError("a CsvBatches stream can be iterated only once")
        self._iterator = self._batches()
        return self._iterator

    def close(self) -> None:
        """Release the file before the end (the end of the iteration releases it too)."""
        if self._iterator is not None:
            self._iterator.close()  # stops the parsing thread, then closes the reader
        else:
            self._stop_parsing()
            self._release()

    def _stop_parsing(self) -> None:
        if self._ahead is not None:
            self._ahead.close()  # the parsing thread stops before the reader is closed

    def _release(self) -> None:
        """Close the reader and delete the prepared copy, if any."""
        self._close_reader()
        if self._copy is not None:
            self._copy.unlink(missing_ok=True)
            self._copy = None

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _batches(self) -> Iterator[pa.RecordBatch]:
        # Parsing runs on a helper thread a few blocks ahead of the conversion (started
        # once the first blocks were read): the two take about the same time, and both
        # release the GIL.
        try:
            converted = (self._convert(raw) for raw in self._raw_blocks())
            yield from _rebatch(converted, self._batch_rows, self._count)
            # Ragged rows after the last good row arrive with the final (empty) read.
            self._raise_ragged(up_to=None, before=None)
            self._check_limits()
        finally:
            self._stop_parsing()
            self._release()

    def _raw_blocks(self) -> Iterator[pa.RecordBatch]:
        first, self._first = self._first, None
        if first is not None:
            yield first
        assert self._ahead is not None
        yield from self._ahead

    def _count(self, rows: int) -> None:
        self.rows_read += rows

    def _convert(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        self._check_limits()
        rows = self._number_rows(raw.num_rows)
        converted: list[pa.Array | None] = []
        failures: dict[int, list[str]] = {}
        failing_column: dict[int, int] = {}  # position -> first column at fault
        # The first batch's columns converted when their types were checked (only the
        # first batch comes here before the dict is emptied).
        done, self._first_converted = self._first_converted, {}
        for index, column in enumerate(self._columns):
            if index in done:
                converted.append(done[index])
                continue
            values = raw.column(index)
            try:
                converted.append(column.convert(values))
                continue
            except _CONVERSION_ERRORS:
                converted.append(None)
            for position in _failing_positions(values, column.convert):
                failures.setdefault(position, []).append(
                    self._reason(column, values[position].as_py())
                )
                failing_column.setdefault(position, index)

        if not self._quarantine:
            # The parsing thread may have met ragged rows of later blocks already: only
            # the ones up to this block's last row compete for "first bad row".
            first_failure = rows[min(failures)].as_py() if failures else None
            self._raise_ragged(up_to=self._next_row - 1, before=first_failure)
            if failures:
                position = min(failures)
                column = self._columns[failing_column[position]]
                # The reason begins with "column '<name>': ".
                raise MalformedRowError(
                    f"file {self.source_name!r}, {self._row(rows[position].as_py())}, "
                    f"{failures[position][0]}. "
                    f"{self._fix_hint(column)}",
                    source=self.source_name,
                    source_row=rows[position].as_py(),
                    column=column.source_name,
                )
        if failures:
            for position in sorted(failures):
                self._quarantined.append(
                    QuarantinedRow(
                        source_row=rows[position].as_py(),
                        raw_line=self._raw_line(raw, position),
                        reason="; ".join(failures[position]),
                    )
                )
            keep = pa.array([p not in failures for p in range(raw.num_rows)], pa.bool_())
            raw, rows = raw.filter(keep), rows.filter(keep)
            converted = [
                column.convert(raw.column(index)) if values is None else values.filter(keep)
                for index, (column, values) in enumerate(zip(self._columns, converted, strict=True))
            ]
        return pa.RecordBatch.from_arrays([*converted, rows], schema=self.schema)

    def _number_rows(self, count: int) -> pa.Array:
        """Source rows of the next ``count`` parsed rows: the next numbers not skipped as ragged."""
        start = self._next_row
        end = start + count - 1
        skipped: list[int] = []
        pending = self._pending_ragged_rows
        while pending and pending[0] <= end:
            skipped.append(pending.popleft())
            end += 1
        self._next_row = end + 1
        length = end - start + 1
        if len(self._row_numbers) < length:
            # One growing 0..n array, sliced and shifted per batch, avoids building
            # 100,000 ints for every batch; it is built by Arrow (a Python range of the
            # first batch's 100,000 ints took ~12 ms before the first batch was written).
            self._row_numbers = _arange(max(length, 2 * len(self._row_numbers)))
        numbers = pc.add(self._row_numbers.slice(0, length), pa.scalar(start, pa.int64()))
        if skipped:
            numbers = numbers.filter(pc.invert(pc.is_in(numbers, pa.array(skipped, pa.int64()))))
        return numbers

    def _raise_ragged(self, *, up_to: int | None, before: int | None) -> None:
        """Under malformedRows: fail, raise for the first ragged row if it is at most
        ``up_to`` and comes before ``before`` (the first conversion failure), if given."""
        if self._quarantine or not self._ragged:
            return
        # The first in the file: a long record may be found after later ragged rows.
        ragged = min(self._ragged, key=lambda bad: bad.source_row or 0)
        row = ragged.source_row
        if row is not None and (
            (up_to is not None and row > up_to) or (before is not None and row > before)
        ):
            return
        where = self._row(ragged.source_row) if ragged.source_row is not None else "a row"
        raise MalformedRowError(
            f"file {self.source_name!r}, {where}: {ragged.reason} ({_shorten(ragged.text)!r}). "
            "Check fileConfig.delimiter and quoteChar, fix the row, or set malformedRows to "
            "'quarantine'",
            source=self.source_name,
            source_row=ragged.source_row,
        )

    def _row(self, source_row: int) -> str:
        """A source row as the user finds it: the header is not counted."""
        return f"row {source_row} after the header" if self._header_offset else f"row {source_row}"

    def _check_limits(self) -> None:
        if len(self._quarantined) > self.quarantined_limit:
            raise MalformedRowError(
                f"file {self.source_name!r} has more than {self.quarantined_limit} malformed "
                "rows: the fileConfig (delimiter, quoteChar, encoding, columns) probably does "
                "not match the file",
                source=self.source_name,
            )

    def _reason(self, column: _Column, value: bytes | None) -> str:
        try:
            text = value.decode("utf-8") if value is not None else None
        except UnicodeDecodeError:
            return (
                f"column {column.source_name!r}: the value is not valid "
                f"{self._config.encoding} text"
            )
        what = _type_phrase(column.type)
        if column.format:
            what += f" in the format {column.format!r} (a real day and time of day)"
        origin = "its declared type" if column.declared else "the type read from the first rows"
        return f"column {column.source_name!r}: {_shorten(text or '')!r} is not {what} ({origin})"

    def _fix_hint(self, column: _Column) -> str:
        if column.declared:
            return (
                "Fix the value, change its type in fileConfig.columns, or set malformedRows "
                "to 'quarantine'"
            )
        return (
            "Fix the value, declare the column's type with fileConfig.columns (e.g. 'string'), "
            "or set malformedRows to 'quarantine'"
        )

    def _raw_line(self, raw: pa.RecordBatch, position: int) -> str:
        delimiter = self._config.delimiter
        quote = self._config.quote_char or None
        fields = []
        for values in raw.columns:
            value = values[position].as_py()
            text = value.decode("utf-8", errors="replace") if value is not None else ""
            if quote and any(ch in text for ch in (delimiter, quote, "\n", "\r")):
                text = quote + text.replace(quote, quote * 2) + quote
            fields.append(text)
        return delimiter.join(fields)


def _rebatch(
    batches: Iterator[pa.RecordBatch], size: int, count: Callable[[int], None]
) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of ``size`` rows (the last one may be smaller)."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        rows += batch.num_rows
        while rows >= size:
            merged = pa.concat_batches(pending) if len(pending) > 1 else pending[0]
            count(size)
            yield merged.slice(0, size)
            rest = merged.slice(size)
            pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
    if rows:
        count(rows)
        yield pa.concat_batches(pending) if len(pending) > 1 else pending[0]


def _arange(count: int) -> pa.Array:
    """0, 1, ..., count - 1 (int64)."""
    ones = pa.repeat(pa.scalar(1, pa.int64()), count)
    return pc.cumulative_sum(ones, start=pa.scalar(-1, pa.int64()))


def _failing_positions(values: pa.Array, convert: Callable[[pa.Array], pa.Array]) -> list[int]:
    """Positions of the values ``convert`` refuses in ``values``, which it just refused.

    Arrow casts all or nothing, so the array is halved until the refused values are alone:
    about 2·k·log2(n) casts of shrinking slices for k bad values among n. The happy path
    never comes here.
    """
    if len(values) == 1:
        return [0]
    middle = len(values) // 2
    positions: list[int] = []
    for offset, part in ((0, values.slice(0, middle)), (middle, values.slice(middle))):
        try:
            convert(part)
        except _CONVERSION_ERRORS:
            positions += [offset + position for position in _failing_positions(part, convert)]
    return positions


def _type_phrase(data_type: pa.DataType) -> str:
    if pa.types.is_integer(data_type):
        return "an integer"
    if pa.types.is_floating(data_type):
        return "a number"
    if pa.types.is_decimal(data_type):
        return f"a decimal({data_type.precision},{data_type.scale})"
    if pa.types.is_boolean(data_type):
        return "a boolean (true/false)"
    if pa.types.is_date(data_type):
        return "a date"
    if pa.types.is_timestamp(data_type):
        return "a timestamp with a time zone" if data_type.tz else "a timestamp"
    return f"a {data_type}"


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_VALUE_IN_MESSAGE else text[:_MAX_VALUE_IN_MESSAGE] + "…"


def read_csv_batches(
    path: Path,
    file_config: FileConfig,
    *,
    batch_rows: int = 100_000,
    source_name: str | None = None,
    max_quarantined: int = 100_000,
) -> CsvBatches:
    """Open ``path`` (already resolved, see :func:`resolve_landing_path`) for streaming.

    The header, the first block and the column types are read now, so configuration and
    file-level errors (:class:`CsvFormatError`) surface before any write starts; the rest
    is parsed on a helper thread from then on, a few blocks ahead of the iteration:
    iterate the result to its end or ``close()`` it (write_bronze does). ``source_name`` is how messages name the file (the
    user's filePath; defaults to the file name). More than ``max_quarantined`` bad rows
    fail the load: a file that bad almost always has a wrong fileConfig.
    """
    return CsvBatches(
        Path(path),
        file_config,
        batch_rows=batch_rows,
        source_name=source_name or Path(path).name,
        max_quarantined=max_quarantined,
    )

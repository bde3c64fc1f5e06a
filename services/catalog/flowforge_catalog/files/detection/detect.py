"""detect(): a bounded sample of a file in, a :class:`Detection` out.

The steps: sniff the encoding from the first bytes; read the head and evenly spaced chunks
(:mod:`.sampling`); cut them at line breaks and decode (:mod:`.encoding`); find where the
table starts, the lines before it and the comment lines (:mod:`.preamble`), and leave those
out; take the dialect from the head and re-align each mid-file chunk on a record boundary
(:mod:`.dialect`); decide whether the first record is a header; infer each column's type,
nulls and range (:mod:`flowforge_rules.csv.inference`) and meaning (:mod:`.semantics`);
check what the ingest reader can load (:mod:`flowforge_rules.csv.overrides`); and, with AI
settings, let the model add descriptions and names (:mod:`.ai`). Only an unreadable file
raises (:class:`DetectionError`); everything else that looks wrong is a warning.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from dataclasses import dataclass

from flowforge_catalog.files.detection import ai as ai_module
from flowforge_catalog.files.detection.dialect import (
    Dialect,
    Records,
    lines_of,
    read_records,
    resync,
)
from flowforge_catalog.files.detection.encoding import (
    Encoding,
    TextChunk,
    decode_chunks,
    sniff_encoding,
)
from flowforge_catalog.files.detection.errors import DetectionError
from flowforge_catalog.files.detection.preamble import find_table, strip_lines
from flowforge_catalog.files.detection.result import Detection
from flowforge_catalog.files.detection.sampling import SampleSource, read_raw_chunks
from flowforge_catalog.files.detection.semantics import (
    KeyCandidate,
    primary_key_candidates,
    semantic_type,
    suggested_names,
)
from flowforge_rules.csv.columns import PII_TYPES, DetectedColumn
from flowforge_rules.csv.inference import TypeGuess, split_nulls
from flowforge_rules.csv.overrides import column_override
from flowforge_shared.csv_rules import (
    MAX_RECORD_BYTES,
    repeated_names,
    unique_names,
    untitled_row_names,
)

DEFAULT_SAMPLE_BYTES = 4 * 1024 * 1024
_PREFIX_BYTES = 4096
_EXAMPLES = 5
_EXAMPLE_CHARS = 200
_SEMANTIC_VALUES = 1000
_TYPED_LOOKING = re.compile(
    r"^\s*[-+]?[$€£]?\s?\d[\d.,\s]*\s?[$€£]?\s*$"  # a number, maybe formatted
    r"|^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # a date
    r"|^(?i:true|false|yes|no|t|f|y|n)$"
)
_NAME_LIKE = re.compile(r"^[^\d\s][\w .()/#%&'’-]{0,127}$")
_YEAR = re.compile(r"^\s*(?:1[89]|20)\d\d\s*$")
# What a value of each type looks like, to tell whether a first-row value is one of the
# column's values or its title: "y" over decimals is a title (it looks like a boolean, not a
# number); "12" over integers is a value.
_LOOKS_LIKE = {
    "integer": re.compile(r"^\s*[-+]?[$€£]?\s?\d[\d.,\s]*\s?[$€£]?\s*$"),
    "decimal": re.compile(r"^\s*[-+]?[$€£]?\s?\d[\d.,\s]*\s?[$€£]?\s*$|^\s*[-+]?\.\d"),
    "float": re.compile(r"^\s*[-+]?(\d|\.\d)[\d.,]*(?:[eE][-+]?\d+)?\s*$|^(?i:nan|inf|infinity)$"),
    "boolean": re.compile(r"^(?i:true|false|yes|no|t|f|y|n|0|1)$"),
    "date": re.compile(r"^\d{1,4}[-/. ](\d{1,2}|[A-Za-z]{3})[-/. ]\d{1,4}"),
    "timestamp": re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"),
}


@dataclass
class _Sample:
    encoding: Encoding
    dialect: Dialect
    first: list[str]
    rows: list[list[str]]
    # Where each of ``rows`` is, for messages: its record number in the file (the first
    # record is 1) when it comes from the head, else the byte offset of its chunk.
    places: list[int | str]
    exact: bool
    bytes_per_record: float | None
    warnings: list[str]
    # Records the load treats as malformed whatever the columns: (place, first line, reason).
    malformed: list[tuple[int | str, str, str]]
    # Bytes not valid in the encoding were decoded as U+FFFD (see ``Decoded.replaced``).
    replaced: bool = False
    # fileConfig.skipRows and commentChar: the lines left out before the records are read.
    skip_rows: int = 0
    comment_char: str | None = None

    def add(self, records: Records, place, *, skip_first: bool = False) -> None:
        """Add ``records``; ``place(index)`` says where the record at ``index`` is."""
        for index, row in enumerate(records.rows):
            if skip_first and index == 0:
                continue
            if index in records.malformed:
                self.malformed.append((place(index), row[0], records.malformed[index]))
            elif self.replaced and any("\ufffd" in value for value in row):
                line = self.dialect.delimiter.join(row)
                reason = f"the row is not valid {self.encoding.name} text"
                self.malformed.append((place(index), line, reason))
            else:
                self.rows.append(row)
                self.places.append(place(index))


@dataclass
class _Profile:
    name: str
    values: list[str]
    non_null: Counter
    null_tokens: list[str]
    guess: TypeGuess


def detect(
    source: SampleSource,
    *,
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
    ai: ai_module.AiSettings | None = None,
    allow_sample_values: bool = False,
) -> Detection:
    """The schema and dialect of the CSV file ``source``, from at most ``sample_bytes``.

    With ``ai`` settings the model adds descriptions, semantic types and names; it never
    changes a type and its failure is a warning. Raw values of PII columns are sent to it
    only with ``allow_sample_values``. Raises :class:`DetectionError` for an empty, binary
    or undecodable file.
    """
    sample = _read_sample(source, sample_bytes)
    warnings = list(sample.warnings)
    titles = sample.first
    if untitled_row_names(titles, sample.rows):
        # R's titles over row names: the row names' column is untitled, like pandas' index.
        sample.first = ["", *titles]
    width, good, header_names, profiles, has_header = _header(sample)
    if not has_header and sample.first is not titles:
        sample.first = titles
        width, good, header_names, profiles, has_header = _header(sample)
    if has_header:
        names = header_names
    else:
        names = [f"column_{index}" for index in range(1, width + 1)]
        good = [sample.first, *good]
        profiles = _profiles(names, good, sample.dialect.delimiter)
    profiles = _resolve_null_conflicts(profiles, sample.dialect.delimiter, warnings)

    row_estimate = _row_estimate(source.size, sample, has_header)
    warnings += _malformed_warnings(sample, has_header)
    warnings += _shape_warnings(sample, names, has_header, good)

    columns = [_column(profile, len(good)) for profile in profiles]
    for column, suggestion in zip(columns, suggested_names(names), strict=True):
        if suggestion is not None:
            column.suggested_name = suggestion
            column.provenance["suggestedName"] = "heuristic"
    for column, profile in zip(columns, profiles, strict=True):
        warnings += _column_warnings(column, profile)

    candidates, suggested = primary_key_candidates(
        [
            KeyCandidate(
                c.name,
                c.type,
                c.scale,
                unique=len(p.non_null) == sum(p.non_null.values()),
                non_null=not c.nullable,
                rows=len(good),
            )
            for c, p in zip(columns, profiles, strict=True)
        ]
    )
    detection = Detection(
        encoding=sample.encoding.name,
        delimiter=sample.dialect.delimiter,
        quote_char=sample.dialect.quote_char,
        escape_char=sample.dialect.escape_char,
        has_header=has_header,
        skip_rows=sample.skip_rows,
        comment_char=sample.comment_char,
        line_ending=sample.dialect.line_ending,
        row_count_estimate=row_estimate,
        row_count_exact=sample.exact,
        columns=columns,
        candidate_primary_keys=candidates,
        suggested_primary_key=suggested,
        suggested_primary_key_source="heuristic" if suggested else None,
        warnings=warnings,
    )
    if ai is not None:
        detection = ai_module.enrich(detection, ai, allow_sample_values=allow_sample_values)
    return detection


# --------------------------------------------------------------------------- the sample


def _read_sample(source: SampleSource, sample_bytes: int) -> _Sample:
    size = source.size
    if size == 0:
        raise DetectionError(
            "the file is empty (0 bytes): upload a CSV file with a header and rows"
        )
    encoding = sniff_encoding(source.read_range(0, min(size, _PREFIX_BYTES)))
    raw = read_raw_chunks(source, sample_bytes, unit=encoding.unit)
    decoded = decode_chunks(raw, encoding)
    encoding, texts = decoded.encoding, decoded.texts
    if not texts or not texts[0].at_start:
        raise DetectionError(
            f"the file's first record is longer than the {len(raw[0].data)} bytes "
            "sampled, or it has no line breaks: check that it is a CSV file"
        )
    head = texts[0]
    if not head.text.strip():
        raise DetectionError("the file holds no data (only blank lines): upload a CSV with rows")
    table = find_table(head.text, at_end=head.at_end)
    dialect = table.dialect
    # The lines before the table and the comment lines are left out, as the load leaves them.
    text = strip_lines(
        head.text, skip_rows=table.skip_rows, comment=table.comment_char, dialect=dialect
    )
    try:
        head_records = read_records(text, dialect, at_end=head.at_end)
    except csv.Error as error:
        raise DetectionError(f"the start of the file cannot be read as CSV: {error}") from error
    if not head.at_end and len(head_records.rows) > 1:
        head_records.drop_cut_end()
    if not head_records.rows:
        raise DetectionError("the file holds no data (only blank lines): upload a CSV with rows")
    if 0 in head_records.malformed:
        raise DetectionError(
            f"the file's first row cannot be read: {head_records.malformed[0]}. Check that it "
            "is a CSV file and that its quotes are balanced"
        )
    sample = _Sample(
        encoding,
        dialect,
        head_records.rows[0],
        [],
        [],
        head.at_end,
        None,
        list(decoded.warnings),
        [],
        decoded.replaced,
        table.skip_rows,
        table.comment_char,
    )
    # Records are numbered from 1 (the first record, a header or not) as in the file.
    sample.add(head_records, lambda index: index + 1, skip_first=True)
    parsed_bytes, parsed_records = head.byte_length, len(head_records.rows)
    if len(head_records.rows) == 1 and not head.at_end:
        # Nothing but the first record in the head: the next row is longer than the head.
        after = len(encoding.bom) + head.byte_length
        sample.add(_long_row(source, after, encoding, dialect), lambda index: index + 2)
    for chunk in texts[1:]:
        records, used_bytes, problem = _chunk_records(
            chunk, dialect, len(sample.first), table.comment_char
        )
        if problem:
            sample.warnings.append(problem)
            continue
        sample.add(records, lambda index, offset=chunk.offset: f"a row near byte {offset}")
        parsed_bytes += used_bytes
        parsed_records += len(records.rows)
    sample.bytes_per_record = parsed_bytes / parsed_records if parsed_records else None
    return sample


def _long_row(source: SampleSource, offset: int, encoding: Encoding, dialect: Dialect) -> Records:
    """The records of a window of ``MAX_RECORD_BYTES`` (and a little) at ``offset``, the start
    of a row longer than the head: enough to tell whether the load reads that row."""
    length = MAX_RECORD_BYTES + 4 * encoding.unit
    data = source.read_range(offset, length)
    at_end = offset + len(data) >= source.size
    decoder = codecs.getincrementaldecoder(encoding.codec)(errors="replace")
    records = read_records(decoder.decode(data, final=at_end), dialect, at_end=at_end)
    if not at_end:
        records.drop_cut_end()
    return records


def _chunk_records(
    chunk: TextChunk, dialect: Dialect, width: int, comment: str | None
) -> tuple[Records, int, str | None]:
    """(records of a mid-file chunk, the bytes they span, a warning if it was skipped)."""
    text = strip_lines(chunk.text, skip_rows=0, comment=comment, dialect=dialect)
    # Runs of spaces collapsed first (delimiter " "), so that records have their width.
    text = text if dialect.delimiter != " " else "".join(lines_of(text, dialect))
    start, _ = resync(text, dialect, width)
    try:
        records = read_records(text[start:], dialect, at_end=chunk.at_end)
    except csv.Error as error:
        return (
            Records([], {}),
            0,
            f"the sample near byte {chunk.offset} could not be parsed ({error}); skipped",
        )
    if not chunk.at_end:
        records.drop_cut_end()
    used = chunk.byte_length * (len(text) - start) // max(len(text), 1)
    return records, used, None


def _row_estimate(size: int, sample: _Sample, has_header: bool) -> int:
    header = 1 if has_header else 0
    if sample.exact or sample.bytes_per_record is None:
        return len(sample.rows) + 1 - header
    total = round((size - len(sample.encoding.bom)) / sample.bytes_per_record)
    return max(total - header, len(sample.rows) + 1 - header)


# --------------------------------------------------------------------------- columns


def _profiles(names: list[str], rows: list[list[str]], delimiter: str) -> list[_Profile]:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    profiles = []
    for name, values in zip(names, columns, strict=True):
        non_null, tokens, guess = split_nulls(Counter(values), name=name, delimiter=delimiter)
        profiles.append(_Profile(name, list(values), non_null, tokens, guess))
    return profiles


def _header(sample: _Sample) -> tuple:
    """(width, rows of that width, header names, their profiles, whether ``sample.first`` is
    a header)."""
    width = len(sample.first)
    good = [row for row in sample.rows if len(row) == width]
    # Named as the reader names them: blank cells by position, repeats with a suffix.
    header_names = unique_names(
        [name if name.strip() else f"column_{i}" for i, name in enumerate(sample.first, 1)]
    )
    profiles = _profiles(header_names, good, sample.dialect.delimiter)
    return width, good, header_names, profiles, _has_header(sample.first, profiles, bool(good))


def _has_header(first: list[str], profiles: list[_Profile], has_rows: bool) -> bool:
    """Whether ``first`` names the columns: votes per column, where the rest of the column
    has a type the first value does not look like (``amount`` over numbers), or the first
    value is name-like and never appears below it."""
    if not has_rows:
        return all(value.strip() and not _TYPED_LOOKING.match(value) for value in first)
    votes = 0.0
    years = _year_titles(first)
    for index, (value, profile) in enumerate(zip(first, profiles, strict=True)):
        if not value.strip():
            continue  # an unnamed index column (pandas) says nothing either way
        if index in years and _not_a_year_of(int(value), profile):
            votes += 1
            continue
        if profile.guess.type != "string":
            looks_like = _LOOKS_LIKE.get(profile.guess.type, _TYPED_LOOKING)
            votes += -1 if looks_like.match(value) else 1
        elif value in profile.non_null:
            votes -= 1
        elif _NAME_LIKE.match(value) and not _TYPED_LOOKING.match(value):
            votes += 0.5
    return votes > 0


def _year_titles(first: list[str]) -> set[int]:
    """The positions of ``first`` holding years (1800-2099) that could title columns
    (``country,1990,1991``): distinct and increasing from left to right, as a person writes
    a header of years; a data row holding years rarely does."""
    years = [(index, int(value)) for index, value in enumerate(first) if _YEAR.match(value)]
    if any(a[1] >= b[1] for a, b in zip(years, years[1:], strict=False)):
        return set()
    return {index for index, _ in years}


def _not_a_year_of(year: int, profile: _Profile) -> bool:
    """Whether the numeric column below a first-row ``year`` is something else than years
    (rates, counts): its values are not all years and ``year`` is outside their range. A
    column of years (``1990`` over ``1991, 1992``) keeps its first value as data."""
    if profile.guess.type not in ("integer", "decimal", "float"):
        return False
    numbers = []
    for value in profile.non_null:
        try:
            numbers.append(float(value))
        except ValueError:
            return False  # formatted numbers (1,234): no judgement
    if not numbers or all(_YEAR.match(value) for value in profile.non_null):
        return False
    return not min(numbers) <= year <= max(numbers)


def _resolve_null_conflicts(
    profiles: list[_Profile], delimiter: str, warnings: list[str]
) -> list[_Profile]:
    """``fileConfig.nullValues`` apply to every column: a token that is null in one column
    (``NA`` among numbers) and a value in another (``NA``, Namibia) cannot be listed, so the
    first column is re-read with the token as a value."""
    for _ in range(3):  # a re-read column may now hold a token as a value: settle in rounds
        as_null = {token for profile in profiles for token in profile.null_tokens}
        conflicts = {token for token in as_null if any(token in p.non_null for p in profiles)}
        if not conflicts:
            return profiles
        for index, profile in enumerate(profiles):
            clash = conflicts & set(profile.null_tokens)
            if not clash:
                continue
            kept = Counter(profile.values)
            non_null, tokens, guess = split_nulls(
                kept, name=profile.name, delimiter=delimiter, keep=frozenset(clash)
            )
            profiles[index] = _Profile(profile.name, profile.values, non_null, tokens, guess)
            shown = ", ".join(repr(token) for token in sorted(clash))
            warnings.append(
                f"column {profile.name!r} uses {shown} for missing values, but another column "
                f"holds {shown} as data; null values apply to the whole file, so "
                f"{profile.name!r} is read as {guess.type}"
            )
    return profiles


def _column(profile: _Profile, rows: int) -> DetectedColumn:
    guess = profile.guess
    non_null_count = sum(profile.non_null.values())
    examples = []
    for value in profile.values:
        if value in profile.non_null and value not in examples:
            examples.append(_shorten(value))
            if len(examples) == _EXAMPLES:
                break
    distinct = list(profile.non_null)[:_SEMANTIC_VALUES]
    tag = semantic_type(profile.name, guess, distinct)
    # Built from values already checked (a TypeGuess, strings): no validation, which is most
    # of the cost of a column when a file has tens of thousands of them.
    column = DetectedColumn.model_construct(
        name=profile.name,
        type=guess.type,
        precision=guess.precision,
        scale=guess.scale,
        format=guess.format,
        ambiguous=guess.ambiguous,
        format_candidates=list(guess.format_candidates),
        number_format=guess.number_format,
        nullable=non_null_count < rows or rows == 0,
        null_tokens=profile.null_tokens,
        distinct_ratio=round(len(profile.non_null) / non_null_count, 4) if non_null_count else None,
        min=_shorten(guess.minimum) if guess.minimum is not None else None,
        max=_shorten(guess.maximum) if guess.maximum is not None else None,
        examples=examples,
        semantic_type=tag,
        pii=tag in PII_TYPES,
        provenance={},  # given: a default factory costs more than the rest of the column
    )
    if tag is not None:
        column.provenance.update({"semanticType": "heuristic", "pii": "heuristic"})
    return column


def _column_warnings(column: DetectedColumn, profile: _Profile) -> list[str]:
    warnings = []
    name = column.name
    guess = profile.guess
    if profile.values and not profile.non_null:
        warnings.append(f"column {name!r} is empty (null) in every sampled row; read as string")
    if guess.near_type is not None:
        shown = ", ".join(repr(_shorten(value, 40)) for value in guess.misfits)
        warnings.append(
            f"column {name!r}: {guess.near_share:.0%} of the sampled values are "
            f"{guess.near_type}, but not {shown}, so it is read as string. If those are "
            f"errors, set its type to {guess.near_type} and malformedRows to 'quarantine'"
        )
    if column.ambiguous:
        choices = " or ".join(column.format_candidates)
        warnings.append(
            f"column {name!r}: ambiguous {column.type} format — every value fits both "
            f"day/month and month/day order ({choices}); no sampled day is above 12. "
            "Choose the format; until then the suggested fileConfig loads it as string"
        )
    _, reason = column_override(column)
    if reason is not None and not column.ambiguous:
        warnings.append(
            f"column {name!r} is {column.type} but the suggested fileConfig loads it as "
            f"string: {reason}"
        )
    return warnings


def _where(place: int | str, has_header: bool) -> str:
    """A sampled row as the reader numbers source rows: data records, the header not counted."""
    if isinstance(place, str):
        return place
    return f"row {place - 1 if has_header else place}"


def _malformed_warnings(sample: _Sample, has_header: bool) -> list[str]:
    if not sample.malformed:
        return []
    shown = "; ".join(
        f"{_where(place, has_header)} ({_shorten(line, 40)!r}): {reason}"
        for place, line, reason in sample.malformed[:_EXAMPLES]
    )
    more = (
        f" and {len(sample.malformed) - _EXAMPLES} more"
        if len(sample.malformed) > _EXAMPLES
        else ""
    )
    return [
        f"{len(sample.malformed)} sampled rows are malformed and will not load as data (the "
        f"load fails, or sets them aside with malformedRows 'quarantine'; the rows after "
        f"them load): {shown}{more}"
    ]


def _shape_warnings(
    sample: _Sample, names: list[str], has_header: bool, good: list[list[str]]
) -> list[str]:
    warnings = []
    width = len(sample.first)
    ragged = [
        (row, place)
        for row, place in zip(sample.rows, sample.places, strict=True)
        if len(row) != width
    ]
    if ragged:
        row, place = ragged[0]
        what = "header" if has_header else "first row"
        where = _where(place, has_header)
        warnings.append(
            f"{len(ragged)} of {len(sample.rows) + (0 if has_header else 1)} sampled rows have a "
            f"different number of fields than the {what} ({width}); the first is {where}, "
            f"with {len(row)} fields. The load fails on such rows unless malformedRows is "
            "'quarantine': check the delimiter and quoting, or fix those rows"
        )
    if has_header and not good and not sample.malformed:
        warnings.append("the file has a header and no data rows")
    if has_header:
        repeated = repeated_names(sample.first)
        if repeated:
            shown = ", ".join(repr(name) for name in repeated)
            renamed = ", ".join(
                repr(new)
                for old, new in zip(sample.first, names, strict=True)
                if old.strip() and old != new
            )
            warnings.append(
                f"the header names {shown} more than once: the repeats are named {renamed}, "
                "here, in the preview and in the load. Rename them with fileConfig.columns "
                "(columns[].rename) if you prefer other names"
            )
    return warnings


def _shorten(value: str, limit: int = _EXAMPLE_CHARS) -> str:
    return value if len(value) <= limit else value[:limit] + "…"

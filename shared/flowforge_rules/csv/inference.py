"""A column's type, inferred from its sampled values, and the values that stand for null.

The values are validated with the same Arrow functions the ingest reader converts with
(``cast``, ``strptime``), so a type detected here is a type the reader can load. Inference
works on the distinct values with their counts, vectorised (RE2 patterns, Arrow casts).

Order of the tests, narrowest first:

- boolean: one spelling pair (true/false, yes/no, y/n, t/f, any case); 1/0 only when the
  column is exactly {0, 1} and named like a flag (``is_active``, ``deleted``, ``*_flag``).
- integer: ``-?digits`` that fit int64 (precision = the most digits); digits with a leading
  zero (``007``) are codes and stay strings, as in the reader; wider integers are decimals.
- decimal: plain ``-?digits.digits`` with at most 9 decimals and 38 digits; float beyond
  that, or with an exponent, ``NaN`` or ``inf``.
- decimal with a number format: a currency symbol ($ € £), thousands separators, a decimal
  comma (``1.234,56``): which separator is the decimal one is decided by a value that only
  one reading accepts, else by the delimiter (``;`` files write decimal commas).
- date: ISO, ``%Y/%m/%d``, d/m/Y or m/d/Y with ``/`` or ``-``, ``%d.%m.%Y``, two-digit
  years, ``01-Jan-2024``. Day/month order comes from a value > 12 in one position; when no
  value decides, the column is an *ambiguous* date (no format, both candidates listed).
  Dotted dates are read day first, the only convention that writes them.
- timestamp: ISO (``T`` or space, optional seconds, up to 6 decimals, ``Z``/offset, dates
  without time mixed in), or d/m/Y H:M[:S] [AM/PM] with the same day/month rule.
- string otherwise; when at least 90 % of the values (by count) fit one type, the guess
  records that type and the misfits so detection can warn about them.

Null tokens: empty fields always; ``NULL``, ``null``, ``N/A``, ``#N/A`` in any column; ``NA``
and ``-`` only where treating them as null lets the rest of the column take a type (``NA``
is also Namibia).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from flowforge_rules.csv.columns import NumberFormat
from flowforge_shared.csv_rules import strict_strptime

STRONG_NULLS = ("NULL", "null", "Null", "N/A", "n/a", "#N/A")
WEAK_NULLS = ("NA", "-")
NEAR_SHARE = 0.9
MAX_DECIMAL_SCALE = 9
MAX_DECIMAL_PRECISION = 38
_CALENDAR_CHECKS = 5000
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)

_BOOLEAN_PAIRS = ({"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"})
_FLAG_NAME = re.compile(
    r"^(is|has|can|was|should|allow|allows)_|_(flag|ind|indicator|yn|bool)$|^(active|enabled|"
    r"disabled|deleted|archived|flag|valid|verified|visible|subscribed|opt_in|opted_in|"
    r"consent|locked|paid|approved)$"
)
_DIGITS = "^-?[0-9]+$"
_LEADING_ZERO = "^-?0[0-9]"
_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_FLOAT = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$|^-?(?i:nan|inf|infinity)$"
_CURRENCIES = "$€£"
_SPACES = " \u00a0\u202f"
# decimal separator, thousands separator, the number pattern (RE2)
_CONVENTIONS = (
    (".", ",", r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"),
    (",", ".", r"[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?|[0-9]+(?:,[0-9]+)?"),
    (",", " ", r"[0-9]{1,3}(?:[ \x{a0}\x{202f}][0-9]{3})+(?:,[0-9]+)?|[0-9]+(?:,[0-9]+)?"),
)
_DATE_DAY_MONTH = r"^(?P<a>[0-9]{1,2})[/.-](?P<b>[0-9]{1,2})[/.-]"
# (RE2 shape, formats): one format is certain; a {first}/{second} pair is decided by values
_DATE_SHAPES = (
    (r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$", ("%Y-%m-%d",)),
    (r"^[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}$", ("%Y/%m/%d",)),
    (r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$", ("%d/%m/%Y", "%m/%d/%Y")),
    (r"^[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}$", ("%d-%m-%Y", "%m-%d-%Y")),
    (r"^[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}$", ("%d.%m.%Y", "%m.%d.%Y")),
    (r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{2}$", ("%d/%m/%y", "%m/%d/%y")),
    (r"^[0-9]{1,2}-[A-Za-z]{3}-[0-9]{4}$", ("%d-%b-%Y",)),
    (r"^[0-9]{1,2} [A-Za-z]{3} [0-9]{4}$", ("%d %b %Y",)),
)
_ANY_DATE_SHAPE = "|".join(f"(?:{shape})" for shape, _ in _DATE_SHAPES)
_ISO_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
_ISO_TIMESTAMP_RE = re.compile(_ISO_TIMESTAMP)
_LOCAL_TIMESTAMP = (
    r"^[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{4}[ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2})?( ?[AaPp][Mm])?$"
)
_LOCAL_TIMESTAMP_PARTS = re.compile(
    r"^\d{1,2}(?P<sep>[/.-])\d{1,2}[/.-]\d{4}(?P<t>[ T])\d{1,2}:\d{2}(?P<s>:\d{2})?(?P<p> ?[AaPp][Mm])?$"
)


@dataclass(frozen=True)
class TypeGuess:
    """What inference concluded for one column's non-null values."""

    type: str
    precision: int | None = None
    scale: int | None = None
    format: str | None = None
    format_candidates: tuple[str, ...] = ()
    number_format: NumberFormat | None = None
    minimum: str | None = None
    maximum: str | None = None
    near_type: str | None = None  # a string column most of whose values fit this type
    near_share: float = 0.0
    misfits: tuple[str, ...] = field(default=())

    @property
    def ambiguous(self) -> bool:
        return len(self.format_candidates) > 1


def split_nulls(
    values: Counter[str], *, name: str, delimiter: str, keep: frozenset[str] = frozenset()
) -> tuple[Counter[str], list[str], TypeGuess]:
    """(non-null values, the null tokens found, the type of the non-null values).

    Tokens in ``keep`` are values, never null (see detection's null-token conflicts)."""
    tokens = [token for token in ("", *STRONG_NULLS) if token in values and token not in keep]
    rest = Counter({value: n for value, n in values.items() if value not in tokens})
    guess = infer_type(rest, name=name, delimiter=delimiter)
    weak = [token for token in WEAK_NULLS if token in rest and token not in keep]
    if weak:
        without = Counter({value: n for value, n in rest.items() if value not in weak})
        if not without:
            return without, tokens + weak, infer_type(without, name=name, delimiter=delimiter)
        if guess.type == "string":
            typed = infer_type(without, name=name, delimiter=delimiter)
            if typed.type != "string":
                return without, tokens + weak, typed
    return rest, tokens, guess


_CACHED_DISTINCT = 64


def infer_type(values: Counter[str], *, name: str, delimiter: str) -> TypeGuess:
    """The narrowest type every value of ``values`` (non-null, with counts) converts to."""
    if not values:
        return TypeGuess("string")
    if len(values) <= _CACHED_DISTINCT:
        # A wide file (20,000 columns of a few values each) repeats the same small columns
        # over and over, and each inference is a few dozen Arrow calls: remember them. The
        # name matters only to a {0, 1} column (a flag name makes it boolean).
        flag = None
        if {value.lower() for value in values} == {"0", "1"}:
            flag = bool(_FLAG_NAME.search(_snake(name)))
        return _infer_small(tuple(sorted(values.items())), flag, delimiter)
    return _infer_type(values, name=name, delimiter=delimiter)


@functools.lru_cache(maxsize=1 << 14)
def _infer_small(
    items: tuple[tuple[str, int], ...], flag: bool | None, delimiter: str
) -> TypeGuess:
    # The name only has to make _FLAG_NAME match (or not) for a {0, 1} column.
    return _infer_type(
        Counter(dict(items)), name="is_flag" if flag else "value", delimiter=delimiter
    )


def _infer_type(values: Counter[str], *, name: str, delimiter: str) -> TypeGuess:
    keys = list(values)
    counts = pa.array(list(values.values()), pa.int64())
    total = sum(values.values())
    strings = pa.array(keys, pa.string())
    near: list[tuple[float, str, pa.Array]] = []

    def share(mask: pa.Array) -> float:
        return pc.sum(pc.if_else(mask, counts, 0)).as_py() / total

    def record(type_name: str, mask: pa.Array) -> None:
        near.append((share(mask), type_name, mask))

    if len(keys) <= 8:  # a boolean column has two values, in at most a few spellings
        lowered = {key.lower() for key in keys}
        for pair in _BOOLEAN_PAIRS:
            # A lone "y" or "f" may be a code (a size, a gender): single letters need both.
            if lowered <= pair and (len(lowered) == 2 or len(next(iter(pair))) > 1):
                return TypeGuess("boolean")
        if lowered == {"0", "1"} and _FLAG_NAME.search(_snake(name)):
            return TypeGuess("boolean")
        spellings = pa.array(sorted(set().union(*_BOOLEAN_PAIRS)))
        record("boolean", pc.is_in(pc.utf8_lower(strings), spellings))

    if ":" in keys[0] and _ISO_TIMESTAMP_RE.match(keys[0]):
        # A column of ISO timestamps skips the number and date tests: none of them takes
        # every value of a column the timestamp test below takes (each value has a '-'
        # after four digits, one of them a ':'). When that test finds no single type, the
        # other tests run as usual (they tell the near type).
        timestamp = _timestamp(strings, keys)
        if isinstance(timestamp, TypeGuess):
            return timestamp

    digits = pc.match_substring_regex(strings, _DIGITS)
    leading_zero = pc.match_substring_regex(strings, _LEADING_ZERO)
    if pc.all(digits).as_py():
        if pc.any(leading_zero).as_py():
            # Codes (zip codes, account numbers): keep the zeros, as the reader does.
            return _string_range(TypeGuess("string"), keys)
        return _integer(strings)
    record("integer", digits)

    plain = pc.and_(pc.match_substring_regex(strings, _PLAIN_DECIMAL), pc.invert(leading_zero))
    if pc.all(plain).as_py():
        guess = _decimal(strings, strings)
        if guess is not None:
            return guess
    floats = pc.match_substring_regex(strings, _FLOAT)
    if pc.all(floats).as_py() and _casts(strings, pa.float64()):
        return _with_range(TypeGuess("float"), keys, pc.cast(strings, pa.float64()))
    formatted = _formatted_number(strings, keys, delimiter)
    if isinstance(formatted, TypeGuess):
        return formatted
    record("decimal", pc.or_(floats, formatted))

    # One pass tells whether any value has a date's shape; most columns have none, and each
    # shape's mask is then all false (eight regex passes saved, the same candidates kept).
    dated = pc.match_substring_regex(strings, _ANY_DATE_SHAPE)
    any_dated = pc.any(dated).as_py()
    for shape, formats in _DATE_SHAPES:
        mask = pc.match_substring_regex(strings, shape) if any_dated else dated
        if pc.all(mask).as_py():
            guess = _date(strings, keys, formats)
            if isinstance(guess, TypeGuess):
                return guess
            if guess:  # impossible dates: they do not fit
                mask = pc.and_(mask, pc.invert(pc.is_in(strings, pa.array(guess, pa.string()))))
        record("date", mask)

    timestamp = _timestamp(strings, keys)
    if isinstance(timestamp, TypeGuess):
        return timestamp
    record("timestamp", timestamp)

    best_share, best_type, best_mask = max(near, key=lambda item: item[0])
    misfits = pc.filter(strings, pc.invert(best_mask)).slice(0, 3).to_pylist()
    if best_share >= NEAR_SHARE and misfits:
        return _string_range(
            TypeGuess("string", near_type=best_type, near_share=best_share, misfits=tuple(misfits)),
            keys,
        )
    return _string_range(TypeGuess("string"), keys)


# --------------------------------------------------------------------------- numbers


def _integer(strings: pa.Array) -> TypeGuess:
    width = pc.max(pc.utf8_length(pc.utf8_ltrim(strings, "-"))).as_py()
    values = _cast_or_none(strings, pa.int64())
    if values is not None:
        low, high = pc.min_max(values).values()
        return TypeGuess("integer", precision=width, minimum=str(low), maximum=str(high))
    keys = strings.to_pylist()
    if width <= MAX_DECIMAL_PRECISION:  # wider than int64: exact as a decimal of scale 0
        values = pc.cast(strings, pa.decimal128(width, 0))
        return _with_range(TypeGuess("decimal", precision=width, scale=0), keys, values)
    return _string_range(TypeGuess("string"), keys)


def _decimal(
    normalised: pa.Array, originals: pa.Array | list[str], number_format: NumberFormat | None = None
) -> TypeGuess | None:
    """Decimal(p, s) of plain ``-?d+(.d+)?`` strings, or None (too wide, too many decimals)."""
    parts = pc.extract_regex(normalised, r"^-?(?P<i>[0-9]*)(?:\.(?P<f>[0-9]*))?$")
    integer_digits = pc.max(pc.utf8_length(pc.struct_field(parts, "i"))).as_py() or 1
    scale = pc.max(pc.utf8_length(pc.struct_field(parts, "f"))).as_py() or 0
    precision = max(integer_digits + scale, 1)
    if scale > MAX_DECIMAL_SCALE or precision > MAX_DECIMAL_PRECISION:
        return None
    target = pa.decimal128(precision, scale)
    values = _cast_or_none(normalised, target)
    if values is None:
        return None
    keys = originals if isinstance(originals, list) else originals.to_pylist()
    guess = TypeGuess(
        "decimal",
        precision=precision,
        scale=scale,
        number_format=number_format,
        format=_number_pattern(number_format, scale, keys) if number_format else None,
    )
    return _with_range(guess, keys, values)


def _formatted_number(strings: pa.Array, keys: list[str], delimiter: str) -> TypeGuess | pa.Array:
    """A decimal with a currency symbol, thousands separators or a decimal comma; else the
    mask of values that fit some convention (for the near-type warning)."""
    joined = "\n".join(keys)
    symbols = {symbol for symbol in _CURRENCIES if symbol in joined}
    symbol_class = "[$€£]"
    fitting: list[tuple[str, str | None]] = []
    any_mask = None
    for decimal_separator, thousands, number in _CONVENTIONS:
        pattern = (
            rf"^-?(?:{symbol_class}[ \x{{a0}}]?)?-?(?:{number})(?:[ \x{{a0}}]?{symbol_class})?$"
        )
        mask = pc.match_substring_regex(strings, pattern)
        any_mask = mask if any_mask is None else pc.or_(any_mask, mask)
        if pc.all(mask).as_py():
            fitting.append((decimal_separator, thousands))
    if not fitting or len(symbols) > 1:
        return any_mask
    decimal_separator, thousands = _pick_convention(fitting, keys, delimiter)
    normalised = _normalise_numbers(strings, decimal_separator, thousands)
    used_thousands = thousands if any(_has_grouping(k, thousands) for k in keys) else None
    if not symbols and used_thousands is None and decimal_separator == ".":
        return any_mask  # nothing formatted about it: plain numbers failed for another reason
    number_format = NumberFormat(
        decimal_separator=decimal_separator,
        thousands_separator=used_thousands,
        currency_symbol=next(iter(symbols)) if symbols else None,
    )
    guess = _decimal(normalised, keys, number_format)
    return guess if guess is not None else any_mask


def _pick_convention(fitting: list[tuple[str, str | None]], keys: list[str], delimiter: str):
    if len(fitting) == 1:
        return fitting[0]
    separators = {d for d, _ in fitting}
    if separators == {","} or separators == {"."}:
        # Same decimal separator, several thousands separators: the one the values use.
        for decimal_separator, thousands in fitting:
            if any(_has_grouping(key, thousands) for key in keys):
                return decimal_separator, thousands
        return fitting[0]
    # "1,234" reads as 1234 or as 1.234: only the file's convention decides. A ';' file is
    # the European convention (its delimiter is ';' precisely because ',' is the decimal).
    if delimiter == ";":
        return next(item for item in fitting if item[0] == ",")
    return next(item for item in fitting if item[0] == ".")


def _has_grouping(key: str, thousands: str | None) -> bool:
    if thousands is None:
        return False
    if thousands == " ":
        return any(space in key.strip(_CURRENCIES + _SPACES) for space in _SPACES)
    return re.search(rf"[0-9]{re.escape(thousands)}[0-9]{{3}}(?![0-9])", key) is not None


def _normalise_numbers(
    strings: pa.Array, decimal_separator: str, thousands: str | None
) -> pa.Array:
    text = pc.replace_substring_regex(strings, r"[$€£ \x{a0}\x{202f}]", "")
    if thousands and thousands != " ":
        text = pc.replace_substring(text, thousands, "")
    if decimal_separator != ".":
        text = pc.replace_substring(text, decimal_separator, ".")
    return text


def _number_pattern(number_format: NumberFormat, scale: int, keys: list[str]) -> str:
    """The convention as a pattern with its real characters: ``$#,##0.00``, ``#.##0,00 €``."""
    thousands = number_format.thousands_separator
    pattern = f"#{thousands}##0" if thousands else "0"
    if scale:
        pattern += number_format.decimal_separator + "0" * scale
    symbol = number_format.currency_symbol
    if symbol:
        prefixed = any(key.lstrip("-").startswith(symbol) for key in keys)
        pattern = f"{symbol}{pattern}" if prefixed else f"{pattern} {symbol}"
    return pattern


# --------------------------------------------------------------------------- dates and times


def _date(
    strings: pa.Array, keys: list[str], formats: tuple[str, ...]
) -> TypeGuess | list[str] | None:
    """The date type of values that all have one shape; or the values of that shape that
    are not calendar dates; or None when the shape is not a date after all."""
    if len(formats) == 1:
        chosen: tuple[str, ...] = formats
    else:
        parts = pc.extract_regex(strings, _DATE_DAY_MONTH)
        first = pc.max(pc.cast(pc.struct_field(parts, "a"), pa.int32())).as_py()
        second = pc.max(pc.cast(pc.struct_field(parts, "b"), pa.int32())).as_py()
        day_first, month_first = formats
        if first > 12 and second > 12:
            return None
        if first > 12:
            chosen = (day_first,)
        elif second > 12:
            chosen = (month_first,)
        elif "." in day_first:
            chosen = (day_first,)  # dotted dates are written day first
        else:
            chosen = formats  # no value decides: ambiguous
    invalid = _not_in_calendar(keys, chosen[0])
    if invalid:
        return invalid
    parsed = None
    for candidate in chosen:
        candidate_parsed = _strptime(strings, candidate)
        if candidate_parsed is None:
            return None
        parsed = parsed if parsed is not None else candidate_parsed
    assert parsed is not None
    if len(chosen) > 1:
        return TypeGuess("date", format_candidates=chosen)
    return _with_range(TypeGuess("date", format=chosen[0]), keys, parsed)


def _not_in_calendar(keys: list[str], fmt: str) -> list[str]:
    """Values of the right shape that are no date (``2024-02-30``), among the first
    ``_CALENDAR_CHECKS``. Arrow's strptime rolls them over to the next month, silently, and
    so would the reader: better a string column and a warning than wrong dates."""
    checked = keys[:_CALENDAR_CHECKS]
    if fmt == "%Y-%m-%d":
        # Arrow's ISO date cast is strict (zero-padded, a real day): what it takes, strptime
        # takes too, but for the year 0. Otherwise the values are checked one by one.
        strings = pa.array(checked, pa.string())
        if not pc.any(pc.starts_with(strings, "0000")).as_py() and _casts(strings, pa.date32()):
            return []
    invalid = []
    for key in checked:
        try:
            datetime.strptime(key, fmt)
        except ValueError:
            invalid.append(key)
    return invalid


def _timestamp(strings: pa.Array, keys: list[str]) -> TypeGuess | pa.Array:
    iso = pc.match_substring_regex(strings, _ISO_TIMESTAMP)
    timed = pc.match_substring(strings, ":")
    if pc.all(iso).as_py() and pc.any(timed).as_py():
        for target in (pa.timestamp("us"), pa.timestamp("us", "UTC")):
            values = _cast_or_none(strings, target)
            if values is not None:
                return _with_range(
                    TypeGuess("timestamp", format=_iso_format(keys, target)), keys, values
                )
        # Naive and offset values mixed: no single timestamp type; the minority misfits.
        offset = pc.match_substring_regex(strings, r"(Z|[+-][0-9]{2}:?[0-9]{2})$")
        majority = offset if pc.sum(offset).as_py() * 2 >= len(strings) else pc.invert(offset)
        return pc.and_(iso, majority)
    iso = pc.and_(iso, timed)  # dates alone are no evidence of a timestamp column
    local = pc.match_substring_regex(strings, _LOCAL_TIMESTAMP)
    if not pc.all(local).as_py():
        return pc.or_(iso, local)
    parts = _LOCAL_TIMESTAMP_PARTS.match(keys[0])
    assert parts is not None
    sep = parts["sep"]
    time = "%I:%M" if parts["p"] else "%H:%M"
    time += ":%S" if parts["s"] else ""
    time += ("%p" if parts["p"].strip() == parts["p"] else " %p") if parts["p"] else ""
    dates = pc.extract_regex(strings, _DATE_DAY_MONTH)
    first = pc.max(pc.cast(pc.struct_field(dates, "a"), pa.int32())).as_py()
    second = pc.max(pc.cast(pc.struct_field(dates, "b"), pa.int32())).as_py()
    day_first = f"%d{sep}%m{sep}%Y{parts['t']}{time}"
    month_first = f"%m{sep}%d{sep}%Y{parts['t']}{time}"
    if first > 12 and second > 12:
        return local
    candidates = (
        (day_first,)
        if first > 12 or sep == "."
        else (month_first,)
        if second > 12
        else (day_first, month_first)
    )
    parsed = [_strptime(strings, candidate) for candidate in candidates]
    if any(result is None for result in parsed):
        return local
    if len(candidates) > 1:
        return TypeGuess("timestamp", format_candidates=candidates)
    return _with_range(TypeGuess("timestamp", format=candidates[0]), keys, parsed[0])


def _iso_format(keys: list[str], target: pa.DataType) -> str:
    sample = max(keys, key=len)
    separator = "T" if "T" in sample else " "
    result = f"%Y-%m-%d{separator}%H:%M"
    if re.search(r"\d:\d{2}:\d{2}", sample):
        result += ":%S"
    if re.search(r":\d{2}\.\d", sample):
        result += ".%f"
    return result + ("%z" if target.tz else "")


def _strptime(strings: pa.Array, fmt: str) -> pa.Array | None:
    """The parsed values when every one parses with ``fmt``, else None."""
    try:
        # The reader's own strict parse: an impossible value (31/02, 23:59:60) is no date.
        return strict_strptime(strings, fmt, unit="s")
    except _ARROW_ERRORS:
        return None


# --------------------------------------------------------------------------- helpers


_PREFIX = 64


def _casts(strings: pa.Array, target: pa.DataType) -> bool:
    return _cast_or_none(strings, target) is not None


def _cast_or_none(strings: pa.Array, target: pa.DataType) -> pa.Array | None:
    """``strings`` cast to ``target``, or None when a value does not convert."""
    # A failing cast costs ~1.3 us a value (Arrow formats an error for every value it
    # refuses, not only the first): a few values first, since one refused decides.
    try:
        if len(strings) > _PREFIX:
            pc.cast(strings.slice(0, _PREFIX), target)
        return pc.cast(strings, target)
    except _ARROW_ERRORS:
        return None


def _with_range(guess: TypeGuess, keys: list[str], values: pa.Array) -> TypeGuess:
    """The guess with min/max: the original strings of the smallest and largest values."""
    if len(values) == 0 or values.null_count == len(values):
        return guess
    if pa.types.is_floating(values.type):
        values = pc.if_else(pc.is_nan(values), None, values)  # NaN has no place in an order
        if values.null_count == len(values):
            return guess
    low, high = pc.min_max(values).values()
    return replace(
        guess,
        minimum=keys[pc.index(values, low).as_py()],
        maximum=keys[pc.index(values, high).as_py()],
    )


def _string_range(guess: TypeGuess, keys: list[str]) -> TypeGuess:
    return replace(guess, minimum=min(keys), maximum=max(keys))


def _snake(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")

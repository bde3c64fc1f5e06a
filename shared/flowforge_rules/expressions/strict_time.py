"""Strict dates and times in expressions: never roll an impossible value over to another day.

DuckDB refuses ``2024-02-30`` but is lenient elsewhere, and a lenient parse changes a value
without a word:

* ``CAST('2024-01-01 24:00:00' AS TIMESTAMP)`` is the next day's midnight, ``CAST('24:00' AS
  TIME)`` a time of 24:00, ``CAST('24-01-01' AS DATE)`` the year 24 and ``'infinity'`` the
  year 9999;
* ``CAST('2024-01-01 10:00+01' AS TIMESTAMP)`` drops the offset (10:00, not 09:00 UTC);
* ``strptime('24-01-01', '%Y-%m-%d')`` is the year 24 too, and ``%z`` takes ``+25``;
* ``make_timestamp(2024, 1, 1, 24, 0, 0)`` is 2 January.

So the checked tree is rewritten before DuckDB runs it: each CAST or TRY_CAST to a date or
time type, each ``strptime``/``try_strptime`` and each six-part ``make_timestamp`` becomes a
call to one of the macros below, which checks the text's layout first. A text a cast refuses
fails the expression with the value named (as DuckDB's own cast errors do); the TRY forms
give NULL. Values that are not text (a DATE cast to TIMESTAMP, say) are cast as before.

The rewriting happens after the user's text was checked against the allowlist, so a user
cannot call a macro by name: its name is not on the user's allowlist, only on DuckDB's.
"""

from __future__ import annotations

from sqlglot import exp

from flowforge_rules.expressions.errors import ExpressionError

_SPACE = "[[:space:]]*"
_DATE = "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}"
_TIME = "([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,9})?)?"
_OFFSET = "[Zz]|[+-](0?[0-9]|1[0-9]|2[0-3])(:?[0-5][0-9])?"

# target type -> (layout a text must have, how the layout is described to the user)
_LAYOUTS: dict[str, tuple[str, str]] = {
    "DATE": (
        f"({_DATE})([ T]({_TIME}))?",
        "a date written YYYY-MM-DD (hours 00-23 if a time follows, no time zone)",
    ),
    "TIMESTAMP": (
        f"({_DATE})([ T]({_TIME}))?",
        "a timestamp written YYYY-MM-DD hh:mm:ss (hours 00-23, no time zone: cast to "
        "TIMESTAMPTZ to apply an offset)",
    ),
    "TIMESTAMPTZ": (
        f"({_DATE})([ T]({_TIME}))? ?({_OFFSET})?",
        "a timestamp written YYYY-MM-DD hh:mm:ss+hh:mm (hours 00-23, offsets under 24 hours)",
    ),
    "TIME": (_TIME, "a time written hh:mm:ss (hours 00-23)"),
}
_TARGETS = {
    exp.DataType.Type.DATE: "DATE",
    exp.DataType.Type.TIMESTAMP: "TIMESTAMP",
    exp.DataType.Type.TIMESTAMPNTZ: "TIMESTAMP",
    exp.DataType.Type.TIMESTAMPTZ: "TIMESTAMPTZ",
    exp.DataType.Type.TIME: "TIME",
}


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _cast_macros() -> list[str]:
    macros = []
    for target, (layout, described) in _LAYOUTS.items():
        pattern = _sql_text(f"{_SPACE}({layout}){_SPACE}")
        refused = f"typeof(x) = 'VARCHAR' AND NOT regexp_full_match(CAST(x AS VARCHAR), {pattern})"
        message = _sql_text(f"not {described}: ")
        name = target.lower()
        macros.append(
            f"CREATE MACRO ff_cast_{name}(x) AS CASE WHEN {refused} "
            f"THEN error({message} || CAST(x AS VARCHAR)) ELSE CAST(x AS {target}) END"
        )
        macros.append(
            f"CREATE MACRO ff_try_cast_{name}(x) AS CASE WHEN {refused} "
            f"THEN NULL ELSE TRY_CAST(x AS {target}) END"
        )
    return macros


MACROS: tuple[str, ...] = (
    *_cast_macros(),
    # r: the layout the format describes (see format_pattern); f must be a literal.
    "CREATE MACRO ff_strptime(x, f, r) AS CASE WHEN NOT regexp_full_match(x, r) "
    "THEN error('not a real date or time in the format ' || f || ': ' || x) "
    "ELSE strptime(x, f) END",
    "CREATE MACRO ff_try_strptime(x, f, r) AS CASE WHEN NOT regexp_full_match(x, r) "
    "THEN NULL ELSE try_strptime(x, f) END",
    "CREATE MACRO ff_make_timestamp(y, mo, d, h, mi, s) AS CASE "
    "WHEN NOT (h BETWEEN 0 AND 23 AND mi BETWEEN 0 AND 59 AND s >= 0 AND s < 60) "
    "THEN error('make_timestamp needs hours 0-23, minutes 0-59 and seconds under 60: got '"
    " || CAST(h AS VARCHAR) || ':' || CAST(mi AS VARCHAR) || ':' || CAST(s AS VARCHAR)) "
    "ELSE make_timestamp(y, mo, d, h, mi, s) END",
)
FUNCTIONS: frozenset[str] = frozenset(macro.split()[2].split("(")[0].lower() for macro in MACROS)

# strptime specifiers -> what their text may look like (DuckDB's parse then checks ranges).
_SPECIFIERS = {
    "Y": "[0-9]{4}",
    "y": "[0-9]{2}",
    "m": "[0-9]{1,2}",
    "d": "[0-9]{1,2}",
    "H": "[0-9]{1,2}",
    "I": "[0-9]{1,2}",
    "M": "[0-9]{1,2}",
    "S": "[0-9]{1,2}",
    "j": "[0-9]{1,3}",
    "f": "[0-9]{1,6}",
    "g": "[0-9]{1,3}",
    "n": "[0-9]{1,9}",
    "z": f"({_OFFSET})",
    "Z": "[^[:space:]]+",
    "a": "[[:alpha:]]+",
    "A": "[[:alpha:]]+",
    "b": "[[:alpha:]]+",
    "B": "[[:alpha:]]+",
    "h": "[[:alpha:]]+",
    "p": "[[:alpha:]]+",
    "%": "%",
}


def format_pattern(fmt: str) -> str:
    """The layout a text written in the strptime format ``fmt`` has: ``%Y`` is four digits
    (never ``24`` for the year 24), ``%z`` an offset under 24 hours. Specifiers not listed
    (locale forms, week numbers) match anything and are left to DuckDB's parse."""
    parts = [_SPACE]
    index = 0
    while index < len(fmt):
        char = fmt[index]
        if char == "%" and index + 1 < len(fmt):
            index += 1
            if fmt[index] == "-" and index + 1 < len(fmt):  # %-d: no leading zero
                index += 1
            parts.append(_SPECIFIERS.get(fmt[index], ".*"))
        elif char.isspace():
            parts.append("[[:space:]]+")
        elif char.isalnum():
            parts.append(char)
        elif char in "\\^":
            parts.append(".")
        else:
            parts.append(f"[{char}]")
        index += 1
    parts.append(_SPACE)
    return "".join(parts)


def rewrite(expression: str, tree: exp.Expression) -> exp.Expression:
    """``tree`` (already checked) with every lenient date/time parse replaced by a macro."""
    tree = tree.copy()
    # Children before their parents (reversed pre-order), so nested parses are rewritten too.
    for node in reversed(list(tree.walk())):
        strict = _strict(expression, node)
        if strict is not node:
            if node is tree:
                return strict
            node.replace(strict)
    return tree


def _strict(expression: str, node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Cast | exp.TryCast):
        target = _TARGETS.get(node.to.this)
        if target is None:
            return node
        prefix = "ff_try_cast_" if isinstance(node, exp.TryCast) else "ff_cast_"
        return exp.Anonymous(this=prefix + target.lower(), expressions=[node.this])
    if isinstance(node, exp.StrToTime):
        return _strptime(expression, "ff_strptime", node.this, node.args.get("format"))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime":
        if len(node.expressions) != 2:
            raise ExpressionError(expression, "try_strptime takes a text and a format")
        value, fmt = node.expressions
        return _strptime(expression, "ff_try_strptime", value, fmt)
    if isinstance(node, exp.TimestampFromParts):
        parts = [node.args.get(key) for key in ("year", "month", "day", "hour", "min", "sec")]
        extra = any(node.args.get(key) for key in ("nano", "zone", "milli", "this", "expression"))
        if all(part is not None for part in parts) and not extra:
            return exp.Anonymous(this="ff_make_timestamp", expressions=parts)
    return node


def _strptime(
    expression: str, name: str, value: exp.Expression, fmt: exp.Expression | None
) -> exp.Expression:
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise ExpressionError(
            expression, "the format of strptime must be written as text, e.g. '%d/%m/%Y'"
        )
    pattern = exp.Literal.string(format_pattern(fmt.this))
    return exp.Anonymous(this=name, expressions=[value, fmt, pattern])

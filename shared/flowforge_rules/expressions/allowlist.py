"""What a user expression may contain: the allowlist, as data.

Two vocabularies describe the same allowlist, because the expression is checked twice:

* sqlglot node classes (and, for functions sqlglot does not model, lower-case names), used on
  the user's text before anything runs;
* DuckDB's own parse tree (``json_serialize_sql``): expression classes, function names and cast
  types, used on the exact SQL text handed to DuckDB, so a difference between how sqlglot and
  DuckDB read a piece of SQL cannot smuggle in something sqlglot did not see.

Anything not listed is refused. To allow a new function, add it to both vocabularies and add an
evaluation example to the tests (they evaluate every allowed function end to end).
"""

from __future__ import annotations

import re

from sqlglot import exp

DType = exp.DataType.Type

# Operators, literals and control flow: no context needed beyond the node itself.
STRUCTURE_NODES: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Column,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.Neg,
        exp.Not,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.DPipe,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.And,
        exp.Or,
        exp.Is,
        exp.Like,
        exp.ILike,
        exp.Escape,
        exp.SimilarTo,
        exp.In,
        exp.Between,
        exp.Case,
        exp.If,
        exp.Cast,
        exp.TryCast,
        exp.Interval,
    }
)

# Functions sqlglot models with their own class (whatever name the user spelled them with:
# sqlglot maps SUBSTR to Substring, CEILING to Ceil, IFNULL to Coalesce, ...).
FUNCTION_NODES: frozenset[type[exp.Expression]] = frozenset(
    {
        # strings
        exp.Concat,
        exp.ConcatWs,
        exp.Upper,
        exp.Lower,
        exp.Trim,
        exp.Substring,
        exp.Length,
        exp.Replace,
        exp.RegexpReplace,
        exp.RegexpLike,
        exp.RegexpFullMatch,
        exp.RegexpExtract,
        exp.Pad,
        exp.Left,
        exp.Right,
        exp.SplitPart,
        exp.StrPosition,
        exp.Reverse,
        exp.Contains,
        exp.StartsWith,
        exp.EndsWith,
        exp.Translate,
        exp.Ascii,
        exp.Chr,
        exp.Unicode,
        exp.MD5,
        exp.Levenshtein,
        exp.JarowinklerSimilarity,
        # nulls
        exp.Coalesce,
        exp.Nullif,
        # dates and times
        exp.CurrentDate,
        exp.CurrentTimestamp,
        exp.DateDiff,
        exp.DateAdd,
        exp.TimestampTrunc,
        exp.Extract,
        exp.Year,
        exp.Quarter,
        exp.Month,
        exp.Week,
        exp.WeekOfYear,
        exp.Day,
        exp.DayOfMonth,
        exp.DayOfWeek,
        exp.DayOfWeekIso,
        exp.DayOfYear,
        exp.Dayname,
        exp.Monthname,
        exp.Hour,
        exp.Minute,
        exp.Second,
        exp.LastDay,
        exp.TimeToStr,
        exp.StrToTime,
        exp.DateFromParts,
        exp.TimestampFromParts,
        exp.TimeToUnix,
        # numbers
        exp.Round,
        exp.Floor,
        exp.Ceil,
        exp.Abs,
        exp.Sign,
        exp.Greatest,
        exp.Least,
        exp.Pow,
        exp.Sqrt,
        exp.Cbrt,
        exp.Ln,
        exp.Log,
        exp.Exp,
        exp.Trunc,
        exp.IsNan,
        exp.IsInf,
    }
)

# DuckDB functions sqlglot parses as exp.Anonymous, by lower-case name.
ANONYMOUS_FUNCTIONS: frozenset[str] = frozenset(
    {
        "date_part",
        "datepart",
        "date_sub",
        "datesub",
        "now",
        "strlen",
        "prefix",
        "suffix",
        "strip_accents",
        "try_strptime",
        "age",
        "millisecond",
        "microsecond",
        "isoyear",
        "yearweek",
        "isfinite",
        "gcd",
        "lcm",
        "round_even",
    }
)

# A Var is a bare word rendered verbatim; only date-part words are expected
# (DATE_DIFF('day', ...), EXTRACT(year FROM ...), INTERVAL 3 DAY). DuckDB validates the unit.
VAR_PARENTS: frozenset[type[exp.Expression]] = frozenset(
    {exp.DateDiff, exp.DateAdd, exp.TimestampTrunc, exp.Extract, exp.Interval}
)
VAR_NAME = re.compile(r"^[A-Za-z_]{1,32}$")

# CAST/TRY_CAST targets: scalar types only (no nested, user-defined, JSON or binary types).
CAST_TYPES: frozenset[exp.DataType.Type] = frozenset(
    {
        DType.BOOLEAN,
        DType.TINYINT,
        DType.SMALLINT,
        DType.INT,
        DType.BIGINT,
        DType.INT128,
        DType.UTINYINT,
        DType.USMALLINT,
        DType.UINT,
        DType.UBIGINT,
        DType.FLOAT,
        DType.DOUBLE,
        DType.DECIMAL,
        DType.TEXT,
        DType.VARCHAR,
        DType.CHAR,
        DType.DATE,
        DType.TIME,
        DType.TIMESTAMP,
        DType.TIMESTAMPNTZ,
        DType.TIMESTAMPTZ,
        DType.INTERVAL,
    }
)

# LPAD/RPAD build strings as long as asked: the length must be a literal up to this.
MAX_PAD_LENGTH = 10_000

# Functions that are known and harmless but make a rerun give different data; a retried
# job must write the same rows, so they are refused with their own reason.
NONDETERMINISTIC: frozenset[type[exp.Expression]] = frozenset({exp.Rand, exp.Uuid})

# ---- DuckDB's view of the same allowlist (json_serialize_sql class / function names) ----

DUCKDB_CLASSES: frozenset[str] = frozenset(
    {
        "COLUMN_REF",
        "CONSTANT",
        "FUNCTION",
        "OPERATOR",
        "COMPARISON",
        "CONJUNCTION",
        "CASE",
        "CAST",
        "BETWEEN",
    }
)

DUCKDB_FUNCTIONS: frozenset[str] = frozenset(
    {
        # operators DuckDB represents as functions
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "||",
        "~~",
        "!~~",
        "~~*",
        "!~~*",
        "like_escape",
        "not_like_escape",
        "ilike_escape",
        "not_ilike_escape",
        # strings
        "concat",
        "concat_ws",
        "upper",
        "lower",
        "trim",
        "ltrim",
        "rtrim",
        "substring",
        "length",
        "replace",
        "regexp_replace",
        "regexp_matches",
        "regexp_full_match",
        "regexp_extract",
        "lpad",
        "rpad",
        "left",
        "right",
        "split_part",
        "strpos",
        "reverse",
        "contains",
        "starts_with",
        "ends_with",
        "translate",
        "ascii",
        "chr",
        "unicode",
        "md5",
        "levenshtein",
        "jaro_winkler_similarity",
        "strlen",
        "prefix",
        "suffix",
        "strip_accents",
        # nulls
        "nullif",
        # dates and times
        "current_date",
        "current_timestamp",
        "now",
        "date_diff",
        "date_sub",
        "datesub",
        "date_trunc",
        "date_part",
        "datepart",
        "extract",
        "year",
        "quarter",
        "month",
        "week",
        "weekofyear",
        "day",
        "dayofmonth",
        "dayofweek",
        "isodow",
        "dayofyear",
        "dayname",
        "monthname",
        "hour",
        "minute",
        "second",
        "millisecond",
        "microsecond",
        "isoyear",
        "yearweek",
        "last_day",
        "strftime",
        "strptime",
        "try_strptime",
        "make_date",
        "make_timestamp",
        "epoch",
        "age",
        # INTERVAL n <unit> as DuckDB's parser expands it
        "to_years",
        "to_quarters",
        "to_months",
        "to_weeks",
        "to_days",
        "to_hours",
        "to_minutes",
        "to_seconds",
        "to_milliseconds",
        "to_microseconds",
        "to_decades",
        "to_centuries",
        "to_millennia",
        # numbers
        "round",
        "floor",
        "ceil",
        "abs",
        "sign",
        "greatest",
        "least",
        "power",
        "sqrt",
        "cbrt",
        "ln",
        "log",
        "exp",
        "trunc",
        "isnan",
        "isinf",
        "isfinite",
        "gcd",
        "lcm",
        "round_even",
    }
)

# Type names as sqlglot renders them and DuckDB's parser reports them (before binding).
DUCKDB_CAST_TYPES: frozenset[str] = frozenset(
    {
        "BOOLEAN",
        "TINYINT",
        "SMALLINT",
        "INT",
        "INTEGER",
        "BIGINT",
        "INT128",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINT",
        "UINTEGER",
        "UBIGINT",
        "REAL",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
        "TEXT",
        "VARCHAR",
        "CHAR",
        "DATE",
        "TIME",
        "TIMESTAMP",
        "TIMESTAMPTZ",
        "INTERVAL",
    }
)

# Bare words DuckDB parses as column references and binds to functions when no column has
# that name (our relation's columns are c0, c1, ... so none can).
DUCKDB_KEYWORD_VALUES: frozenset[str] = frozenset({"current_date", "current_timestamp"})

"""Checking a user expression against the allowlist, and compiling it to SQL for DuckDB.

The user's text is parsed with sqlglot (dialect duckdb) and every node of the tree must be on
the allowlist (:mod:`.allowlist`). Nothing the user wrote reaches DuckDB as text: the checked
tree is rendered again by sqlglot, with every column renamed to a positional alias, and that
rendering is parsed and checked once more, so what runs is exactly what was checked. Last,
lenient date and time parses are replaced by strict ones (:mod:`.strict_time`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError
from sqlglot.tokens import Token, TokenType

from flowforge_rules.expressions import allowlist, strict_time
from flowforge_rules.expressions.errors import ExpressionError

DIALECT = "duckdb"
MAX_EXPRESSION_CHARS = 4000  # the job contract's limit; checked here too for direct callers
# sqlglot parses recursively (20 to 30 Python frames per level). A fixed limit, well inside
# Python's, keeps the answer the same at save time and in a worker with a deeper stack.
MAX_NESTING = 16
_OPENERS = {TokenType.L_PAREN, TokenType.CASE}
_CLOSERS = {TokenType.R_PAREN, TokenType.END}

# Node kinds a user may plausibly write, and the reason in words the user would recognise.
_KINDS: tuple[tuple[tuple[type[exp.Expression], ...], str], ...] = (
    ((exp.Subquery, exp.Select, exp.Exists, exp.Union), "subqueries (SELECT ...) are not allowed"),
    ((exp.Window,), "window functions (OVER ...) are not allowed"),
    ((exp.Lambda,), "lambda functions are not allowed"),
    ((exp.Star,), "* (all columns) is not allowed"),
    (
        (exp.Alias,),
        "AS (or a name after the expression) is not allowed: the derived column's name names it",
    ),
    ((exp.Placeholder, exp.Parameter), "query parameters are not allowed"),
    ((exp.Dot,), "qualified names (schema.function) are not allowed"),
    ((exp.Bracket, exp.Array, exp.Struct), "lists, structs and [] subscripts are not allowed"),
    ((exp.Collate,), "COLLATE is not allowed"),
    (
        (exp.ByteString, exp.RawString, exp.National, exp.HexString, exp.BitString),
        "special string literals (E'...', $$...$$, N'...') are not allowed; write '...'",
    ),
)
# Roots that are not values but that a user may still write by mistake; the walk names them.
_FRAGMENTS = (exp.Subquery, exp.Star, exp.Alias, exp.Placeholder, exp.Parameter, exp.Literal)


@dataclass(frozen=True)
class Compiled:
    """A checked expression ready for DuckDB.

    ``sql`` names the column ``inputs[i]`` as ``"c{i}"``; the caller provides a relation with
    exactly those columns.
    """

    sql: str
    inputs: tuple[str, ...]


def check_expression(expression: str, columns: Collection[str] | None = None) -> None:
    """Refuse (ExpressionError) anything but one allowlisted expression over known columns.

    With ``columns`` (run time), every column the expression names must be among them, with
    the same spelling and case. Without (save time), any column name is accepted. Either way
    the expression is also rendered for DuckDB, so save time refuses what run time would.
    """
    compile_expression(expression, columns)


def referenced_columns(expression: str) -> set[str]:
    """The input columns an (allowed) expression reads, spelled as written."""
    return set(compile_expression(expression).inputs)


def compile_expression(expression: str, columns: Collection[str] | None = None) -> Compiled:
    """Check ``expression`` (against ``columns`` when given) and render the SQL DuckDB runs."""
    tree = _parse(expression)
    _check_tree(expression, tree, expression)
    names = _column_names(tree)
    if columns is not None:
        _check_columns(expression, names, columns)

    inputs = tuple(dict.fromkeys(names))
    aliases = {name: f"c{index}" for index, name in enumerate(inputs)}
    for column in list(tree.find_all(exp.Column)):
        column.set("this", exp.to_identifier(aliases[column.name], quoted=True))
    sql = _render(expression, tree)

    # The rendering must itself pass the check and be a fixed point of parse-and-render:
    # otherwise sqlglot would be handing DuckDB something other than the tree it checked.
    again = _parse(sql, shown_as=expression)
    _check_tree(expression, again, sql)
    if _render(expression, again) != sql or set(_column_names(again)) != set(aliases.values()):
        raise ExpressionError(expression, "it could not be rewritten safely for DuckDB")
    # Then every lenient date/time parse becomes its strict form (DuckDB checks the result).
    return Compiled(sql=_render(expression, strict_time.rewrite(expression, again)), inputs=inputs)


def _parse(text: str, shown_as: str | None = None) -> exp.Expression:
    """Parse user text (or, with ``shown_as``, our own rendering of it) into one tree."""
    shown = text if shown_as is None else shown_as
    if not text.strip():
        raise ExpressionError(shown, "it is empty")
    if shown_as is None and len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(shown, f"it is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(text)
        # Our rendering may nest deeper than the user's text (x::INT becomes CAST(x AS INT)).
        _check_tokens(shown, tokens, MAX_NESTING if shown_as is None else None)
        trees = sqlglot.parse(text, dialect=DIALECT, error_level=ErrorLevel.RAISE)
    except ParseError as error:
        raise ExpressionError(shown, f"it is not valid SQL: {_parse_problem(error)}") from None
    except SqlglotError as error:
        raise ExpressionError(shown, f"it is not valid SQL: {error}") from None
    except RecursionError:
        raise ExpressionError(shown, "it is nested too deeply") from None
    if len(trees) != 1 or trees[0] is None:
        raise ExpressionError(shown, "it holds no expression, only comments")
    return trees[0]


def _check_tokens(shown: str, tokens: list[Token], max_nesting: int | None) -> None:
    depth = 0
    for token in tokens:
        # sqlglot silently drops a trailing ";" and splits on inner ones: refuse them all.
        if token.token_type == TokenType.SEMICOLON:
            raise ExpressionError(shown, "give one expression, without ';'")
        if token.token_type in _OPENERS:
            depth += 1
            if max_nesting is not None and depth > max_nesting:
                raise ExpressionError(
                    shown, f"it is nested more than {max_nesting} levels deep; simplify it"
                )
        elif token.token_type in _CLOSERS:
            depth -= 1


def _parse_problem(error: ParseError) -> str:
    if not error.errors:
        return str(error).splitlines()[0]
    first = error.errors[0]
    where = f" (line {first.get('line')}, column {first.get('col')})" if first.get("line") else ""
    return f"{first.get('description', 'cannot parse')}{where}"


def _render(expression: str, tree: exp.Expression) -> str:
    try:
        # identify: every column is quoted, so none can be read as a keyword or a function;
        # comments=False: user comments never reach DuckDB.
        return tree.sql(
            dialect=DIALECT, identify=True, comments=False, unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as error:
        raise ExpressionError(expression, f"cannot be written for DuckDB: {error}") from None
    except RecursionError:
        raise ExpressionError(expression, "it is nested too deeply") from None


def _check_tree(expression: str, tree: exp.Expression, text: str) -> None:
    """Walk every node; ``text`` is what was parsed (to quote function names from it)."""
    if isinstance(tree, exp.Query) and not isinstance(tree, exp.Subquery):
        raise ExpressionError(expression, "it is a query (SELECT ...); give one expression")
    if not isinstance(tree, (exp.Condition, exp.Interval, *_FRAGMENTS)):
        keyword = expression.split(None, 1)[0].upper()[:20]
        raise ExpressionError(
            expression,
            f"{keyword} starts a SQL statement; give one expression (a value or a condition)",
        )
    for node in tree.walk():
        problem = _node_problem(text, node)
        if problem is not None:
            raise ExpressionError(expression, problem)


def _node_problem(text: str, node: exp.Expression) -> str | None:
    kind = type(node)
    parent = node.parent
    if kind is exp.Column:
        if not isinstance(node.this, exp.Identifier) or any(
            node.args.get(part) for part in ("table", "db", "catalog")
        ):
            return f"{node.sql(DIALECT)} is a qualified column; name the column alone"
        return None
    if kind in allowlist.STRUCTURE_NODES or kind in allowlist.FUNCTION_NODES:
        return _argument_problem(node)
    if kind is exp.Identifier:
        return None if isinstance(parent, exp.Column) else _not_allowed(text, node)
    if kind is exp.Var:
        if type(parent) in allowlist.VAR_PARENTS and allowlist.VAR_NAME.match(node.name):
            return None
        return f"{node.name} is not a column or a date part"
    if kind is exp.DataType:
        return _cast_type_problem(node)
    if kind is exp.DataTypeParam:
        ok = isinstance(parent, exp.DataType) and isinstance(node.this, exp.Literal)
        return None if ok and node.this.is_int else _not_allowed(text, node)
    if kind is exp.Anonymous:
        if node.name.lower() in allowlist.ANONYMOUS_FUNCTIONS:
            return None
        return f"function {_function_name(text, node)} is not allowed"
    if kind in allowlist.NONDETERMINISTIC:
        name = _function_name(text, node)
        return f"function {name} is not allowed: a rerun of the job must give the same rows"
    if isinstance(node, exp.AggFunc):
        name = _function_name(text, node)
        return f"aggregate function {name} is not allowed: expressions work row by row"
    return _not_allowed(text, node)


def _argument_problem(node: exp.Expression) -> str | None:
    if isinstance(node, exp.In) and (
        not node.expressions or any(node.args.get(key) for key in ("query", "unnest", "field"))
    ):
        return "IN takes a list of values in parentheses, e.g. status IN ('a', 'b')"
    if isinstance(node, exp.Pad):
        length = node.expression
        if not (
            isinstance(length, exp.Literal)
            and length.is_int
            and 0 <= int(length.this) <= allowlist.MAX_PAD_LENGTH
        ):
            return f"LPAD/RPAD length must be a whole number up to {allowlist.MAX_PAD_LENGTH}"
    if isinstance(node, exp.Cast | exp.TryCast) and any(
        node.args.get(key) for key in ("format", "action", "default")
    ):
        return "CAST takes a value and a type only"
    return None


def _cast_type_problem(node: exp.DataType) -> str | None:
    if not isinstance(node.parent, exp.Cast | exp.TryCast) or node.arg_key != "to":
        return f"type {node.sql(DIALECT)} is only allowed as the target of CAST"
    nested = [child for child in node.expressions if not isinstance(child, exp.DataTypeParam)]
    if node.this not in allowlist.CAST_TYPES or nested or node.args.get("nested"):
        return f"CAST to {node.sql(DIALECT)} is not allowed (use a number, text, date or time type)"
    return None


def _not_allowed(text: str, node: exp.Expression) -> str:
    for kinds, reason in _KINDS:
        if isinstance(node, kinds):
            return reason
    if isinstance(node, exp.Func):
        return f"function {_function_name(text, node)} is not allowed"
    return f"{node.sql(DIALECT, comments=False)[:80]} is not allowed here"


def _function_name(text: str, node: exp.Expression) -> str:
    # sqlglot records where the function's name was written; prefer the user's spelling.
    meta = node.meta if hasattr(node, "meta") else {}
    start, end = meta.get("start"), meta.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < len(text):
        written = text[start : end + 1]
        if written.replace("_", "").isalnum():
            return written
    if isinstance(node, exp.Anonymous):
        return node.name
    return node.sql_name().lower() if isinstance(node, exp.Func) else type(node).__name__


def _column_names(tree: exp.Expression) -> list[str]:
    return [column.name for column in tree.find_all(exp.Column)]


def _check_columns(expression: str, names: list[str], columns: Collection[str]) -> None:
    known = set(columns)
    missing = [name for name in dict.fromkeys(names) if name not in known]
    if not missing:
        return
    by_lower: dict[str, list[str]] = {}
    for column in columns:
        by_lower.setdefault(column.lower(), []).append(column)
    described = []
    for name in missing:
        hint = by_lower.get(name.lower()) or difflib.get_close_matches(name, list(columns), 1)
        described.append(f"{name} (did you mean {hint[0]}?)" if hint else name)
    listed = ", ".join(list(columns)[:30]) + (", ..." if len(columns) > 30 else "")
    plural = "columns" if len(missing) > 1 else "column"
    raise ExpressionError(
        expression,
        f"unknown {plural} {', '.join(described)}; the input has: {listed or 'no columns'}",
    )

"""What a database job's ``tableName`` or ``storedProcedure`` names: one to three parts.

One rule for everyone who handles these names: the job contract refuses a name it cannot
read when the job is saved (422 naming the field), the catalog checks a database part
against the job's connection on save, and the ingest worker resolves the same parts again
before it builds SQL, which quotes each part on its own (``[risk].[usp_exposures_since]``,
``"sales"."Orders"``, `` `shop`.`orders` ``).

How a name is read
------------------
Parts are separated by dots. A part is either *quoted*, in one of the dialect's quotes, or
*bare*:

- SQL Server: ``[name]`` (``]]`` inside is one ``]``) or ``"name"`` (``""`` is one ``"``);
- PostgreSQL, Oracle, Snowflake: ``"name"``;
- MySQL/MariaDB: ```name``` (doubled inside), and ``"name"`` as ``ANSI_QUOTES`` reads it;
- SQLite: ``"name"``, ``[name]`` and ```name```, as SQLite itself accepts.

A quoted part may hold anything (dots too) but NUL. A bare part is taken exactly as written
(no case folding: FlowForge uses names as the database's catalog spells them, quoted or
not, as it always has for a one-part name), blanks around it are ignored, blanks inside are
kept (``dbo.Order Lines``), and it cannot hold a dot or a quote character of the dialect.

Refused, each with its reason: an empty part (``a..b``, ``.a``, ``a.``, SQL Server's
``db..t`` shorthand included: write the schema); an unbalanced or stray quote (``[a.b``,
``a]``, ``"a``); text after a closing quote (``[a]b``); more parts than the dialect has —
three on SQL Server, PostgreSQL and Snowflake (``database.schema.name``), two elsewhere
(Oracle ``schema.name``, MySQL ``database.name``, SQLite ``attached-database.name``);
SQL Server's four-part linked-server names are refused too (FlowForge reads through its own
connection). A database part must be the connection's own database (checked on save by the
catalog and again by the worker), and is then dropped: the read runs in that database.

Why not sqlglot: ``sqlglot.exp.to_table`` reads ``a..b`` and ``.a`` as if the empty part
were not there, drops the ``#`` of ``#tmp``, turns text it cannot parse into one quoted name,
and its strict parser refuses names the catalogs hold (``dbo.Order Lines``, ``public.select``)
that FlowForge reads today. The grammar of a qualified name is small enough to state here.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PARTS = {
    "sql-server": 3,
    "snowflake": 3,
    "postgresql": 3,
    "mysql": 2,
    "oracle": 2,
    "sqlite": 2,
}
"""How many parts a name may have per dialect (see the module docstring)."""

_QUOTES: dict[str, dict[str, str]] = {
    "sql-server": {"[": "]", '"': '"'},
    "postgresql": {'"': '"'},
    "oracle": {'"': '"'},
    "snowflake": {'"': '"'},
    "mysql": {"`": "`", '"': '"'},
    "sqlite": {'"': '"', "[": "]", "`": "`"},
}
_FOREIGN_QUOTES = {"[": "]", "`": "`"}  # other dialects' quotes, refused at a part's start

_SHAPES = {
    "sql-server": "database.schema.name",
    "snowflake": "database.schema.name",
    "postgresql": "database.schema.name",
    "oracle": "schema.name",
    "mysql": "database.name",
    "sqlite": "schema.name (the schema being main, temp or an attached database)",
}
_LABELS = {
    "sql-server": "SQL Server",
    "snowflake": "Snowflake",
    "postgresql": "PostgreSQL",
    "oracle": "Oracle",
    "mysql": "MySQL",
    "sqlite": "SQLite",
}


class NameProblem(ValueError):
    """A name that cannot be read, or that disagrees with the job or its connection."""


@dataclass(frozen=True)
class ObjectName:
    """A table or procedure: its own name, and the schema and database it is in, if given.

    On MySQL, where a schema is a database, ``database.name`` gives ``schema``."""

    name: str
    schema: str | None = None
    database: str | None = None


def split_name(db_type: str, text: str) -> tuple[str, ...]:
    """The parts of ``text``, unquoted and unescaped; :class:`NameProblem` says why not."""
    if db_type not in _QUOTES:
        raise NameProblem(f"unknown database type {db_type!r}")
    shown = repr(text)
    if not isinstance(text, str) or not text.strip():
        raise NameProblem("the name is empty")
    if "\x00" in text:
        raise NameProblem(f"{shown} contains a NUL character")
    quotes = _QUOTES[db_type]
    closing_quotes = set(quotes.values())
    label = _LABELS[db_type]
    parts: list[str] = []
    position, length = 0, len(text)
    while True:
        while position < length and text[position].isspace():
            position += 1
        if position < length and text[position] in quotes:
            opening = text[position]
            close = quotes[opening]
            position += 1
            chars: list[str] = []
            while True:
                end = text.find(close, position)
                if end < 0:
                    raise NameProblem(
                        f"{shown} opens a name with {opening} that is never closed with {close}"
                    )
                chars.append(text[position:end])
                if text.startswith(close * 2, end):
                    chars.append(close)  # an escaped closing quote
                    position = end + 2
                    continue
                position = end + 1
                break
            part = "".join(chars)
            if not part:
                raise NameProblem(f"{shown} has an empty quoted name {opening}{close}")
            while position < length and text[position].isspace():
                position += 1
            if position < length and text[position] != ".":
                raise NameProblem(
                    f"{shown} has {text[position]!r} right after the quoted name "
                    f"{opening}{part}{close}; put a dot between parts"
                )
        else:
            end = text.find(".", position)
            end = length if end < 0 else end
            part = text[position:end].strip()
            position = end
            if not part:
                raise NameProblem(
                    f"{shown} has an empty part"
                    + (
                        "; SQL Server's db..name shorthand is not read: write the schema "
                        "(db.dbo.name)"
                        if db_type == "sql-server" and ".." in text
                        else "; write each part between the dots"
                    )
                )
            if part[0] in _FOREIGN_QUOTES and part[0] not in quotes:
                raise NameProblem(
                    f"{shown}: {label} quotes names with {_quote_list(quotes)}, "
                    f"not {part[0]}{_FOREIGN_QUOTES[part[0]]}"
                )
            stray = next((char for char in part if char in quotes or char in closing_quotes), None)
            if stray is not None:
                raise NameProblem(
                    f"{shown} has an unbalanced {stray} in the part {part!r}; quote a name "
                    f"holding quote characters ({_quote_list(quotes)}, the closing quote doubled "
                    "inside)"
                )
        if db_type == "oracle" and '"' in part:
            raise NameProblem(f"{shown}: Oracle names cannot hold a double quote")
        parts.append(part)
        if position >= length:
            break
        position += 1  # the dot
        if position >= length or not text[position:].strip():
            raise NameProblem(f"{shown} ends with a dot: the last part is missing")
    if len(parts) > MAX_PARTS[db_type]:
        linked = (
            "; four-part linked-server names are not read: connect to that server instead"
            if db_type == "sql-server" and len(parts) == 4
            else ""
        )
        raise NameProblem(
            f"{shown} has {len(parts)} parts; a {label} name has at most "
            f"{MAX_PARTS[db_type]}: {_SHAPES[db_type]}{linked}"
        )
    return tuple(parts)


def parse_object_name(db_type: str, text: str) -> ObjectName:
    """``text`` as (database, schema, name); see :func:`split_name`."""
    parts = split_name(db_type, text)
    if len(parts) == 3:
        return ObjectName(parts[2], parts[1], parts[0])
    if len(parts) == 2:
        return ObjectName(parts[1], parts[0])
    return ObjectName(parts[0])


def schema_conflict(db_type: str, text: str, schema: str | None) -> str | None:
    """Why ``text`` and the job's ``schema`` field disagree (None when they do not, or when
    ``text`` names no schema); ``text`` must be readable."""
    parsed = parse_object_name(db_type, text)
    if schema is None or parsed.schema is None or parsed.schema == schema:
        return None
    kind = "database" if db_type == "mysql" else "schema"
    return (
        f"{text!r} names the {kind} {parsed.schema!r} but schema is {schema!r}; "
        f"give the {kind} in one place"
    )


def database_conflict(db_type: str, text: str, database: str | None) -> str | None:
    """Why the database part of ``text`` cannot be read through a connection to
    ``database`` (None when it names none, or the connection's, case aside)."""
    parsed = parse_object_name(db_type, text)
    if parsed.database is None:
        return None
    if database is None:
        return (
            f"{text!r} names the database {parsed.database!r} but the connection names no "
            f"database; set the connection's database to {parsed.database!r} or leave the "
            "database out of the name"
        )
    if parsed.database.casefold() != database.casefold():
        return (
            f"{text!r} names the database {parsed.database!r} but the connection reads "
            f"{database!r}; FlowForge reads through the connection's database: use a "
            f"connection to {parsed.database!r}"
        )
    return None


def resolve_object_name(
    db_type: str, text: str, *, schema: str | None = None, database: str | None = None
) -> ObjectName:
    """What a job reads: the name, and its schema (the name's own, else the job's
    ``schema``); the database part is checked against the connection's ``database`` and
    dropped. Raises :class:`NameProblem` when the name cannot be read or disagrees."""
    parsed = parse_object_name(db_type, text)
    problem = schema_conflict(db_type, text, schema) or database_conflict(db_type, text, database)
    if problem:
        raise NameProblem(problem)
    return ObjectName(parsed.name, parsed.schema or schema)


def _quote_list(quotes: dict[str, str]) -> str:
    return " or ".join(f"{opening}{close}" for opening, close in quotes.items())

"""A user's database query is exactly one read-only SELECT: :func:`check_read_only_query`.

The catalog applies it when a job or a preview is saved, the ingest worker again before it
sends the query (``flowforge_ingest.connectors.sql`` plans the statement around it). Pure
sqlglot, in the source's dialect; the read-only session and the login's permissions are the
layers behind it (docs/connectors.md).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType


class QueryRefused(ValueError):
    """A user's query that is not one read-only SELECT; ``reason`` says what was found."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.reason,))


SQLGLOT_DIALECTS = {
    "sql-server": "tsql",
    "postgresql": "postgres",
    "mysql": "mysql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "sqlite": "sqlite",
}

_DENIED_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgresql": frozenset(
        {
            "pg_sleep",
            "pg_sleep_for",
            "pg_sleep_until",
            "pg_read_file",
            "pg_read_binary_file",
            "pg_ls_dir",
            "pg_stat_file",
            "pg_file_write",
            "pg_file_rename",
            "pg_file_unlink",
            "pg_logdir_ls",
            "pg_ls_logdir",
            "pg_ls_waldir",
            "pg_ls_tmpdir",
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_switch_wal",
            "pg_create_restore_point",
            "pg_promote",
            "pg_logical_emit_message",
            "pg_notify",
            "set_config",
            "nextval",
            "setval",
            "query_to_xml",
            "query_to_xmlschema",
            "query_to_xml_and_xmlschema",
            "cursor_to_xml",
            "lowrite",
        }
    ),
    "sql-server": frozenset(
        {
            "openrowset",
            "openquery",
            "opendatasource",
            "fn_get_audit_file",
            "fn_xe_file_target_read_file",
            "fn_trace_gettable",
        }
    ),
    "mysql": frozenset(
        {
            "load_file",
            "sleep",
            "benchmark",
            "get_lock",
            "release_lock",
            "release_all_locks",
            "master_pos_wait",
            "source_pos_wait",
            "wait_for_executed_gtid_set",
            "wait_until_sql_thread_after_gtids",
            "sys_exec",
            "sys_eval",
        }
    ),
    "oracle": frozenset({"httpuritype"}),
    "snowflake": frozenset(),
    "sqlite": frozenset(
        {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile"}
    ),
}
_DENIED_PREFIXES: dict[str, tuple[str, ...]] = {
    "postgresql": ("dblink", "lo_", "pg_advisory", "pg_try_advisory"),
    "sql-server": ("xp_", "sp_"),
    "mysql": (),
    "oracle": (),
    "snowflake": ("system$",),
    "sqlite": (),
}
# Oracle packages reach the network (UTL_HTTP, UTL_TCP...), files (UTL_FILE), other
# sessions (DBMS_PIPE, DBMS_ALERT), or run SQL text (DBMS_SQL, DBMS_XMLGEN): all refused
# but DBMS_LOB, which reads LOBs.
_ORACLE_ALLOWED_PACKAGES = frozenset({"dbms_lob"})
_LOCKING_HINTS = frozenset(
    {"updlock", "xlock", "tablock", "tablockx", "holdlock", "paglock", "serializable"}
    | {"repeatableread"}
)
_WRITES = {exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE"}
_CHANGES = (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Grant, exp.Revoke)
_RUNS = (exp.Command, exp.Execute, exp.Copy, exp.Set, exp.Use, exp.Transaction, exp.Commit)


def check_read_only_query(db_type: str, query: str) -> None:
    """Raise :class:`QueryRefused` unless ``query`` is exactly one read-only SELECT.

    Parsed with sqlglot in the source's dialect: one statement, a SELECT, a set operation of
    SELECTs, or WITH ... SELECT, with nothing inside it that writes (a data-modifying CTE),
    changes the schema or permissions, runs a procedure, selects INTO, takes locks (FOR
    UPDATE, UPDLOCK...), or calls a function of the dialect's short denylist (sleeping,
    reading files, reaching other servers, changing settings). Functions a user defined are
    not known here: the read-only session and the login's permissions cover them.
    """
    if db_type not in SQLGLOT_DIALECTS:
        raise ValueError(
            f"unknown database type {db_type!r}; expected one of {', '.join(SQLGLOT_DIALECTS)}"
        )
    if not isinstance(query, str) or not query.strip():
        raise QueryRefused("the query is empty")
    if "\x00" in query:
        raise QueryRefused("the query contains a NUL character")
    tokens = query_tokens(db_type, query)
    _check_tokens(db_type, tokens)
    dialect = SQLGLOT_DIALECTS[db_type]
    try:
        parsed = sqlglot.parse(query, read=dialect)
        # a comment after the last ";" comes back as a Semicolon "statement"
        statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    except ParseError as error:
        keyword = next(t.text.upper() for t in tokens if t.token_type != TokenType.SEMICOLON)
        if keyword not in ("SELECT", "WITH", "(", "TABLE"):
            raise QueryRefused(
                f"only a SELECT (or WITH ... SELECT) is allowed, not {keyword}"
            ) from None
        first = error.errors[0] if error.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        raise QueryRefused(
            f"FlowForge could not read the query as {db_type} SQL{where} "
            f"({first.get('description', 'invalid syntax') if first else error}); "
            "simplify it or read from a view"
        ) from None
    if not statements:
        raise QueryRefused("the query is empty")
    if len(statements) > 1:
        raise QueryRefused(
            f"the query has more than one statement ({len(statements)}); give one SELECT"
        )
    root = statements[0]
    reading = root.unnest() if isinstance(root, exp.Subquery) else root
    if not isinstance(reading, (exp.Select, exp.SetOperation)):
        raise QueryRefused(_statement_reason(reading, tokens))
    for node in root.walk():
        reason = _node_reason(db_type, node)
        if reason:
            raise QueryRefused(reason)


def query_tokens(db_type: str, query: str) -> list[Token]:
    """``query``'s sqlglot tokens in ``db_type``'s dialect; :class:`QueryRefused` when it
    cannot be tokenized or holds nothing but semicolons."""
    dialect = sqlglot.Dialect.get_or_raise(SQLGLOT_DIALECTS[db_type])
    try:
        tokens = dialect.tokenize(query)
    except TokenError as error:
        raise QueryRefused(f"the query cannot be read: {error}") from None
    if not [t for t in tokens if t.token_type != TokenType.SEMICOLON]:
        raise QueryRefused("the query is empty")
    return tokens


def _check_tokens(db_type: str, tokens: list[Token]) -> None:
    if db_type != "mysql":
        return
    for index, token in enumerate(tokens):
        for comment in token.comments:
            if comment.lstrip().startswith(("!", "M!", "m!")):
                raise QueryRefused(
                    "MySQL runs the text of /*! ... */ comments as SQL; remove such comments"
                )
        following = tokens[index + 1].text.upper() if index + 1 < len(tokens) else ""
        if token.token_type == TokenType.INTO and following in ("OUTFILE", "DUMPFILE"):
            raise QueryRefused(
                f"INTO {following} writes a file on the database server; it is not allowed"
            )


def _statement_reason(root: exp.Expression, tokens: list[Token]) -> str:
    keyword = next((t.text.upper() for t in tokens if t.token_type != TokenType.SEMICOLON), "it")
    for kind, word in _WRITES.items():
        if isinstance(root, kind):
            return f"the query writes: {word} is not allowed"
    if isinstance(root, (exp.Grant, exp.Revoke)):
        return f"the query changes permissions: {keyword} is not allowed"
    if isinstance(root, _CHANGES):
        return f"the query changes the database: {keyword} is not allowed"
    if isinstance(root, _RUNS):
        name = root.this.upper() if isinstance(root, exp.Command) and root.this else keyword
        return f"the query runs a command: {name} is not allowed; give one SELECT"
    return f"only a SELECT (or WITH ... SELECT) is allowed, not {keyword}"


def _node_reason(db_type: str, node: exp.Expression) -> str | None:
    for kind, word in _WRITES.items():
        if isinstance(node, kind):
            return f"the query writes: {word} is not allowed (found inside the SELECT)"
    if isinstance(node, _CHANGES) or isinstance(node, _RUNS):
        return "the query changes the database or runs a command inside the SELECT"
    if isinstance(node, exp.Select) and node.args.get("into"):
        return "SELECT ... INTO writes (a table or variables); remove the INTO clause"
    if isinstance(node, exp.Lock):
        clause = "FOR UPDATE" if node.args.get("update") else "FOR SHARE / LOCK IN SHARE MODE"
        return f"{clause} locks rows; a read must not take locks: remove it"
    if isinstance(node, exp.WithTableHint):
        for hint in node.expressions:
            if hint.name.lower() in _LOCKING_HINTS:
                return f"the table hint {hint.name.upper()} takes locks a read must not take"
    if isinstance(node, exp.NextValueFor):
        return "NEXT VALUE FOR advances a sequence: a read must not change it"
    if isinstance(node, exp.Func):
        return _function_reason(db_type, node)
    return None


def _function_reason(db_type: str, node: exp.Func) -> str | None:
    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    qualifier = ""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        qualifier = parent.this.sql(dialect=SQLGLOT_DIALECTS[db_type]).strip('"[]`').lower()
        qualifier = qualifier.rsplit(".", 1)[-1]
    shown = f"{qualifier}.{name}" if qualifier else name
    if name in _DENIED_FUNCTIONS[db_type] or name.startswith(_DENIED_PREFIXES[db_type]):
        return f"the function {shown.upper()} is not allowed in a FlowForge read"
    if db_type == "oracle" and qualifier.startswith(("utl_", "dbms_")):
        if qualifier not in _ORACLE_ALLOWED_PACKAGES:
            return f"the Oracle package {qualifier.upper()} is not allowed in a FlowForge read"
    return None

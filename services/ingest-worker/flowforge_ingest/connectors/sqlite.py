"""SQLite through the standard library: a file opened read-only, read as Arrow.

The file is opened as ``file:<path>?mode=ro`` (SQLite itself refuses every write) with
ATTACH disabled (``SQLITE_LIMIT_ATTACHED`` = 0, so a query cannot open another file) and
``query_only`` on. network.refuse_dangerous_options has already checked the path lies in
the directory SQLite files may be read from. A query timeout is enforced by a progress
handler that interrupts the statement once the deadline passes.

SQLite has no column types in a result, only in table declarations: with ``columns``
(from :meth:`SQLiteConnector.describe`) the declared types decide; without, the first
batch is looked at before the stream is handed over (integers, reals, text, blobs), and a
later value of another kind is converted to the column's type or refused by name.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flowforge_ingest.connectors.arrowing import (
    RowStream,
    SourceColumn,
    SourceQueryError,
    arrow_type_for,
    converters_of,
    resolve_columns,
    schema_of,
)
from flowforge_ingest.connectors.base import (
    ColumnInfo,
    ConnectError,
    ConnectFailure,
    ConnectionParams,
    ProcedureInfo,
    SourceReadError,
    TableInfo,
)
from flowforge_ingest.connectors.registry import connect_failure, error_text

DB_TYPE = "sqlite"
_PROGRESS_STEPS = 10_000  # SQLite VM instructions between two deadline checks


def database_uri(path: str) -> str:
    """The read-only URI of a database file; ``?`` and ``#`` in the name are escaped."""
    return f"file:{quote(str(Path(path)), safe='/')}?mode=ro"


class ClosingConnection(sqlite3.Connection):
    """A connection whose ``with`` block closes it, like every other driver's: sqlite3's
    own ``with`` only ends a transaction and leaves the file open."""

    def __exit__(self, *exc_info) -> bool:
        self.close()
        return False


class SQLiteConnector:
    db_type = DB_TYPE

    def connect(self, params: ConnectionParams):
        path = params.database
        if not path or path.strip() == ":memory:":
            raise ConnectError(
                ConnectFailure.DATABASE, "give the path of the SQLite database file to read"
            )
        try:
            if not Path(path).is_file():
                raise sqlite3.OperationalError("unable to open database file")
            conn = sqlite3.connect(
                database_uri(path),
                uri=True,
                factory=ClosingConnection,
                timeout=params.connect_timeout,  # waiting for a writer's lock
                check_same_thread=False,
                isolation_level=None,
            )
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA trusted_schema = OFF")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # is it SQLite?
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            raise self._classify(error, params) from None
        if params.query_timeout:
            _install_deadline(conn, params.query_timeout)
        return conn

    def classify_error(self, error: BaseException) -> ConnectError:
        return self._classify(error, None)

    def _classify(self, error: BaseException, params: ConnectionParams | None) -> ConnectError:
        if isinstance(error, ConnectError):
            return error
        text = error_text(error).lower()
        if "unable to open" in text or "no such file" in text:
            kind = ConnectFailure.DATABASE
        elif "not a database" in text or "malformed" in text:
            kind = ConnectFailure.PROTOCOL  # a file, but not an SQLite database
        else:
            kind = ConnectFailure.OTHER
        return connect_failure(kind, error, DB_TYPE, params)

    def server_version(self, conn) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def list_tables(self, conn, schema: str | None) -> list[TableInfo]:
        statistics = _row_estimates(conn)
        rows = conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        ).fetchall()
        return [
            TableInfo(
                schema=schema or "main",
                name=name,
                kind=kind,
                estimated_rows=statistics.get(name) if kind == "table" else None,
            )
            for name, kind in rows
        ]

    def describe(self, conn, schema: str | None, table: str) -> list[ColumnInfo]:
        rows = conn.execute(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?, ?) ORDER BY cid',
            (table, schema or "main"),
        ).fetchall()
        if not rows:
            raise SourceQueryError(f"the SQLite database has no table or view {table!r}")
        columns = []
        for name, declared, not_null, pk in rows:
            precision, scale, max_length = _declared_arguments(declared or "")
            data_type = arrow_type_for(DB_TYPE, declared or "", precision, scale, max_length)
            columns.append(
                ColumnInfo(
                    name=name,
                    source_type=declared or "",
                    arrow_type=str(data_type),
                    nullable=not not_null and not pk,
                    primary_key=bool(pk),
                    max_length=max_length,
                    precision=precision,
                    scale=scale,
                )
            )
        return columns

    def procedures(self, conn) -> list[ProcedureInfo]:
        return []  # SQLite has no stored procedures

    def execute_batches(
        self,
        conn,
        sql: str,
        params: Mapping[str, Any] | None,
        batch_size: int,
        columns: list[ColumnInfo] | None = None,
    ) -> RowStream:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        try:
            cursor = conn.execute(sql, dict(params) if params else {})
            first = cursor.fetchmany(batch_size)
        except sqlite3.Error as error:
            raise read_error(error) from None
        if cursor.description is None:
            raise SourceQueryError("the SQLite query returns no rows (is it a SELECT?)")
        names = [description[0] for description in cursor.description]
        derived = [
            SourceColumn(name, _inferred_type([row[index] for row in first]))
            for index, name in enumerate(names)
        ]
        resolved = resolve_columns(derived, columns)
        return RowStream(
            schema_of(resolved, DB_TYPE),
            cursor.fetchmany,
            batch_size,
            on_error=read_error,
            on_close=cursor.close,
            converters=converters_of(resolved, DB_TYPE),
            first_rows=first,
        )


def _inferred_type(values: list) -> str:
    """A declared type for a result column, from the values of the first batch."""
    kinds = {type(value) for value in values if value is not None}
    if kinds == {int}:
        return "integer"
    if kinds and kinds <= {int, float}:
        return "real"
    if kinds == {bytes}:
        return "blob"
    return "text"  # text, nothing yet, or a mix: text holds every value


def _declared_arguments(declared: str) -> tuple[int | None, int | None, int | None]:
    import re

    match = re.search(r"\((\d+)(?:\s*,\s*(\d+))?\)", declared)
    if match is None:
        return None, None, None
    if any(word in declared.lower() for word in ("char", "clob", "text")):
        return None, None, int(match.group(1))
    return int(match.group(1)), int(match.group(2) or 0), None


def _row_estimates(conn) -> dict[str, int]:
    """Row counts ANALYZE left in sqlite_stat1 (its first number); nothing is counted."""
    try:
        rows = conn.execute("SELECT tbl, stat FROM sqlite_stat1").fetchall()
    except sqlite3.OperationalError:
        return {}  # never analyzed
    estimates: dict[str, int] = {}
    for table, stat in rows:
        head = str(stat or "").split(" ", 1)[0]
        if head.isdigit():
            estimates[table] = max(estimates.get(table, 0), int(head))
    return estimates


def _install_deadline(conn, seconds: int) -> None:
    """Interrupt any statement that runs past ``seconds`` from its start."""
    started: dict[str, float] = {}

    def trace(statement: str) -> None:
        started["at"] = time.monotonic()

    def progress() -> int:
        return int(time.monotonic() - started.get("at", time.monotonic()) > seconds)

    conn.set_trace_callback(trace)
    conn.set_progress_handler(progress, _PROGRESS_STEPS)


def read_error(error: BaseException) -> Exception:
    if isinstance(error, (SourceQueryError, SourceReadError)) or not isinstance(
        error, sqlite3.Error
    ):
        return error if isinstance(error, Exception) else RuntimeError(str(error))
    text = error_text(error)
    if "interrupted" in text.lower():
        return SourceQueryError(
            "SQLite stopped the query: it ran longer than the connection's queryTimeout",
            text,
        )
    if "locked" in text.lower() or "busy" in text.lower():
        return SourceReadError(
            "the SQLite file is locked by a writer; the job will be retried", text
        )
    return SourceQueryError(f"SQLite refused the query: {text}", text)
